"""The ``tracekd`` command: run a stage without Snakemake.

    tracekd decompose --dataset bAbI --raw DIR --out decomposed.parquet [--config config/config.yaml]
    tracekd score outputs.json --dataset CoTemp --format trace_check_qa [--variant paper|cotempqa]
    tracekd check-prompts outputs.json --dataset CoTemp --model qwen --setting correct
    tracekd check-config config/demo.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tracekd.config import SCHEMA_PATH, ConfigError, load_config

DEFAULT_CONFIG = SCHEMA_PATH.parents[2] / "config" / "config.yaml"


def _decompose(args: argparse.Namespace) -> int:
    from tracekd.decompose import decompose
    from tracekd.io import write_parquet

    config = load_config(args.config)
    if args.dataset not in config["datasets"]:
        raise ConfigError(f"{args.config}: datasets.{args.dataset}: no such dataset; have {sorted(config['datasets'])}")
    options = config["datasets"][args.dataset]
    table, report = decompose(options["loader"], args.raw, options)
    write_parquet(table, args.out)
    print(json.dumps(report.to_dict(), sort_keys=True))
    return 0


def _score(args: argparse.Namespace) -> int:
    from tracekd.reference import score_reference

    if args.format != "trace_check_qa":
        raise ValueError(f"unknown format {args.format!r}; supported: trace_check_qa")
    decomposed = None
    if args.decomposed is not None:
        import polars as pl

        decomposed = pl.read_parquet(args.decomposed)
    result = score_reference(
        args.path, args.dataset, variant=args.variant, gold_facts=args.gold_facts,
        decomposed=decomposed,
    )  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0


def _check_prompts(args: argparse.Namespace) -> int:
    from tracekd.chat import ChatFormat
    from tracekd.config import chat_options, setting_by_name
    from tracekd.generate import load_tokenizer
    from tracekd.reference import check_prompts
    from tracekd.traces import TraceFormat

    config = load_config(args.config)
    for key, names in (("datasets", [args.dataset]), ("models", [args.model])):
        for name in names:
            if name not in config[key]:
                raise ConfigError(f"{args.config}: {key}.{name}: no such entry; have {sorted(config[key])}")
    setting = setting_by_name(config, args.setting)
    model = config["models"][args.model]
    if "name_or_path" not in model:
        raise ConfigError(f"{args.config}: models.{args.model}: built locally, no released prompts to match")
    released = {"babi": "bAbI", "cotemp": "CoTemp"}.get(config["datasets"][args.dataset]["loader"])
    if released is None:
        raise ConfigError(f"datasets.{args.dataset}: the paper released no outputs for this dataset")
    result = check_prompts(
        args.path,
        dataset=released,
        fmt=TraceFormat.from_config(config["datasets"][args.dataset], setting),
        chat=ChatFormat.from_config(chat_options(config, args.dataset, args.model, args.setting)),
        tokenizer=load_tokenizer(model["name_or_path"]),
    )
    print(json.dumps(result, sort_keys=True, ensure_ascii=False))
    return 0 if result["equal"] == result["checked"] else 1


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    print(json.dumps({"config": str(args.path), "datasets": list(config["datasets"]),
                      "models": list(config["models"]),
                      "settings": [s["name"] for s in config["settings"]]}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(prog="tracekd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decompose", help="raw files -> decomposed.parquet; prints the coverage report")
    dec.add_argument("--dataset", required=True, help="dataset name as in the config (e.g. bAbI)")
    dec.add_argument("--raw", required=True, type=Path, help="folder holding the raw files")
    dec.add_argument("--out", required=True, type=Path, help="output parquet file")
    dec.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help="config whose dataset block (tasks, sampling) applies (default: %(default)s)")
    dec.set_defaults(func=_decompose)
    sco = sub.add_parser("score", help="score predictions made elsewhere; prints the metrics as JSON")
    sco.add_argument("path", type=Path, help="a predictions file (JSON lines)")
    sco.add_argument("--dataset", default="CoTemp", help="dataset whose official rule applies")
    sco.add_argument("--format", default="trace_check_qa",
                     help="file layout: trace_check_qa (the paper's released outputs)")
    sco.add_argument("--variant", default="paper", choices=["paper", "cotempqa", "babi"],
                     help="paper: the paper's released evaluator exactly (default); cotempqa "
                     "(CoTemp) or babi (bAbI): our rule on the final answer alone")
    sco.add_argument("--gold-facts", default="none", choices=["none", "answer_facts", "decomposition"],
                     help="CoTemp: how strict IR is judged, the file having no gold facts: not "
                     "judged (default), the facts holding a gold answer, or our decomposition "
                     "(--decomposed) joined on question and facts")
    sco.add_argument("--decomposed", type=Path, default=None,
                     help="our CoTemp decomposed.parquet, for --gold-facts decomposition")
    sco.set_defaults(func=_score)
    chp = sub.add_parser("check-prompts", help="compare our prompts with a released file's input "
                         "(loads the model's real tokenizer); exit 1 on any difference")
    chp.add_argument("path", type=Path, help="a released outputs file (JSON lines)")
    chp.add_argument("--dataset", required=True, help="dataset name as in the config")
    chp.add_argument("--model", required=True, help="model name as in the config (e.g. qwen)")
    chp.add_argument("--setting", required=True, help="setting whose prompt to render (e.g. correct, prompt)")
    chp.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="(default: %(default)s)")
    chp.set_defaults(func=_check_prompts)
    chk = sub.add_parser("check-config", help="validate a config file against the schema")
    chk.add_argument("path", type=Path)
    chk.set_defaults(func=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracekd`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"tracekd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
