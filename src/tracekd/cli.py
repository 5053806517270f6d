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
import traceback
from collections.abc import Sequence
from pathlib import Path

from tracekd.config import ConfigError, enabled_models, load_config
from tracekd.errors import describe_error

#: the paper's config of the workflow folder the command is run from (as Snakemake finds it);
#: relative on purpose: an installed package must not point into the checkout it was built from
DEFAULT_CONFIG = Path("config") / "config.yaml"


def _decompose(args: argparse.Namespace) -> int:
    from tracekd.datasets import decompose
    from tracekd.io import check_output_file, write_parquet

    check_output_file(args.out)  # before the work: a folder at --out fails now, not at the end
    if args.config == DEFAULT_CONFIG and not args.config.is_file():
        raise ConfigError(
            f"{args.config}: no such config file in {Path.cwd()}; run from the workflow's "
            "folder or give --config"
        )
    config = load_config(args.config)
    if args.dataset not in config["datasets"]:
        raise ConfigError(f"{args.config}: datasets.{args.dataset}: no such dataset; have {sorted(config['datasets'])}")
    options = config["datasets"][args.dataset]
    table, report = decompose(options["loader"], args.raw, options)
    write_parquet(table, args.out)
    print(json.dumps(report.to_dict(), sort_keys=True))
    return 0


def _score(args: argparse.Namespace) -> int:
    from tracekd.evaluate.reference import score_reference

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
    from tracekd.config import chat_options, setting_by_name
    from tracekd.datasets import get_dataset
    from tracekd.evaluate.reference import check_prompts
    from tracekd.model.chat import ChatFormat
    from tracekd.model.generate import load_tokenizer
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
    released = get_dataset(config["datasets"][args.dataset]["loader"]).released
    if released is None:
        raise ConfigError(f"datasets.{args.dataset}: the paper released no outputs for this dataset")
    result = check_prompts(
        args.path,
        dataset=released.name,
        fmt=TraceFormat.from_config(config["datasets"][args.dataset], setting),
        chat=ChatFormat.from_config(chat_options(config, args.dataset, args.model, args.setting)),
        tokenizer=load_tokenizer(model["name_or_path"]),
    )
    print(json.dumps(result, sort_keys=True, ensure_ascii=False))
    return 0 if result["equal"] == result["checked"] else 1


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    print(json.dumps({"config": str(args.path), "datasets": list(config["datasets"]),
                      "models": enabled_models(config),
                      "settings": [s["name"] for s in config["settings"]]}))
    return 0


def _released() -> list[tuple[str, tuple[str, ...]]]:
    """(released name, score variants) of every dataset plug-in whose outputs the paper released."""
    from tracekd.datasets import get_dataset, registered

    found = []
    for loader in registered():
        released = get_dataset(loader).released
        if released is not None:
            found.append((released.name, released.variants))
    return found


def _variants() -> list[str]:
    return sorted({variant for _, variants in _released() for variant in variants})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(prog="tracekd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decompose", help="raw files -> decomposed.parquet; prints the coverage report")
    dec.add_argument("--dataset", required=True, help="dataset name as in the config")
    dec.add_argument("--raw", required=True, type=Path, help="folder holding the raw files")
    dec.add_argument("--out", required=True, type=Path, help="output parquet file")
    dec.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help="config whose dataset block (tasks, sampling) applies "
                     "(default: %(default)s in the current folder)")
    dec.set_defaults(func=_decompose, input="raw")
    sco = sub.add_parser("score", help="score predictions made elsewhere; prints the metrics as JSON")
    sco.add_argument("path", type=Path, help="a predictions file (JSON lines)")
    sco.add_argument("--dataset", default=None,
                     help=f"the released dataset whose rules apply ({', '.join(n for n, _ in _released())}) "
                     "(default: the one the file's path names)")
    sco.add_argument("--format", default="trace_check_qa",
                     help="file layout: trace_check_qa (the paper's released outputs)")
    sco.add_argument("--variant", default="paper", choices=_variants(),
                     help="paper: the paper's released evaluator exactly (default); the dataset's "
                     "own rule name: our rule on the final answer alone")
    sco.add_argument("--gold-facts", default="none", choices=["none", "answer_facts", "decomposition"],
                     help="for rows released without gold facts, how strict IR is judged: not "
                     "judged (default), the facts holding a gold answer, or our decomposition "
                     "(--decomposed) joined on question and facts")
    sco.add_argument("--decomposed", type=Path, default=None,
                     help="our decomposed.parquet of the dataset, for --gold-facts decomposition")
    sco.set_defaults(func=_score, input="path")
    chp = sub.add_parser("check-prompts", help="compare our prompts with a released file's input "
                         "(loads the model's real tokenizer); exit 1 on any difference")
    chp.add_argument("path", type=Path, help="a released outputs file (JSON lines)")
    chp.add_argument("--dataset", required=True, help="dataset name as in the config")
    chp.add_argument("--model", required=True, help="model name as in the config (e.g. qwen)")
    chp.add_argument("--setting", required=True, help="setting whose prompt to render (e.g. correct, prompt)")
    chp.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="(default: %(default)s)")
    chp.set_defaults(func=_check_prompts, input="path")
    chk = sub.add_parser("check-config", help="validate a config file against the schema")
    chk.add_argument("path", type=Path)
    chk.set_defaults(func=_check_config, input="path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracekd`` console script.

    The error boundary: a mistake in the input (a bad row, a bad config key, a wrong path) is
    one line naming the file (and row and field), exit status 2; anything else is a bug, told
    in one line naming the input first, then its traceback, exit status 1.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tracekd: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RecursionError, MemoryError) as err:
        # ConfigError, RawFormatError and PathError are ValueErrors that lead with the location
        print(f"tracekd: error: {describe_error(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        where = getattr(args, args.input)
        print(
            f"tracekd: error: {where}: internal error while running {args.command}: "
            f"{describe_error(err)} (please report it, with the traceback below)",
            file=sys.stderr,
        )
        traceback.print_exc(file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
