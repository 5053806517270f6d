"""CPU benchmark: the demo's training, today's recipe against the fast one, and its generation.

On the demo's own examples (config/demo.yaml: synthetic CoTemp, MARCO and bAbI, the correct-trace
setting) and the demo's tiny model, trains each dataset with

  today: the demo's training block as it is (``training.fast: false``: random order, padded to
         each batch's longest example),
  new:   the same block with ``training.fast: true`` (length-grouped batches, the effective
         batch in one micro-batch),

for the same examples and epochs, at the demo's thread count per job, the two interleaved per
dataset so that a drift in the machine's speed hits both. Then generation on each dataset's
test prompts: the batched engine against a one-prompt-at-a-time loop (identical greedy outputs
are counted). Prints one JSON object and writes it to ``--out`` as
``cpu_bench_{device}_{date}.json``.

    python benchmarks/cpu_bench.py                  # about 2 minutes on 2 cores
    python benchmarks/cpu_bench.py --recipe new     # one recipe only (to time whole processes)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import chat_ids, generation, header, train_summary, write_report  # noqa: E402

from tracekd.config import load_config, merged_training, to_setting  # noqa: E402
from tracekd.model.chat import ChatFormat  # noqa: E402
from tracekd.model.train import TrainSpec, train_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"today": False, "new": True}


def demo_examples(config: dict[str, Any], work: Path, datasets: list[str]) -> dict[str, Any]:
    """Each dataset's correct-trace examples, built by the workflow's own stages."""
    import polars as pl

    from tracekd.datasets import decompose
    from tracekd.datasets.download import prepare_raw
    from tracekd.traces import TraceFormat, build_traces

    setting = next(s for s in config["settings"] if s["name"] == "correct")
    out = {}
    for name in datasets:
        ds = config["datasets"][name]
        raw = work / name / "raw"
        prepare_raw(ds["loader"], ds["source"], raw, options=ds)
        table, _ = decompose(ds["loader"], raw, ds)
        frame = build_traces(table, setting=to_setting(setting), fmt=TraceFormat.from_config(ds, setting))
        out[name] = {split: frame.filter(pl.col("split") == split) for split in ("train", "test")}
    return out


def build_base(config: dict[str, Any], examples: dict[str, Any], work: Path, model: str) -> Path:
    """The demo's tiny model, built as rule build_model builds it."""
    from tracekd.model.tiny import build_tiny_model

    texts: list[str] = []
    for splits in examples.values():
        texts += splits["train"]["prompt"].to_list() + splits["train"]["completion"].to_list()
    base = work / "base"
    build_tiny_model(texts, base, config["models"][model]["build"], config["seed"])
    return base


def train_once(base: Path, frame: Any, training: dict[str, Any], fast: bool, work: Path, seed: int) -> dict[str, Any]:
    """One dataset's training with one recipe; its comparable figures."""
    spec = TrainSpec.from_config({**training, "fast": fast})
    started = time.perf_counter()
    metrics = train_model(
        base=str(base), prompts=frame["prompt"].to_list(), completions=frame["completion"].to_list(),
        fmt=ChatFormat(), spec=spec, lora=None, quantization=None, seed=seed, out_dir=work / "out",
        checkpoint_dir=work / "ckpt",
    )  # fmt: skip
    return train_summary(metrics, time.perf_counter() - started)


def totals(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tokens and training seconds summed over datasets, and their ratio."""
    tokens = sum(r["tokens_trained"] for r in runs.values())
    seconds = sum(r["wall_seconds"] for r in runs.values())
    return {"tokens_trained": tokens, "wall_seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark, write the report; returns it."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.yaml")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every dataset of the config")
    parser.add_argument("--recipe", choices=["both", *RECIPES], default="both")
    parser.add_argument("--epochs", type=float, default=1.0, help="the same for both recipes (the demo: 8)")
    parser.add_argument("--threads", type=int, default=None, help="default: the config's resources.train.threads")
    parser.add_argument("--max-train", type=int, default=None, help="use only this many training examples per dataset")
    parser.add_argument("--no-generate", action="store_true", help="skip the generation section")
    parser.add_argument("--gen-single", type=int, default=8, help="test prompts also generated one at a time")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the config's inference.max_new_tokens")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)

    config = load_config(args.config)
    threads = args.threads or config["resources"]["train"]["threads"]
    torch.set_num_threads(threads)
    datasets = args.datasets or list(config["datasets"])
    training = {**merged_training(config, args.model), "epochs": args.epochs}
    recipes = list(RECIPES) if args.recipe == "both" else [args.recipe]
    report: dict[str, Any] = {**header("cpu"), "config": str(args.config.name), "epochs": args.epochs,
                              "train": {r: {} for r in recipes}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        examples = demo_examples(config, work, datasets)
        base = build_base(config, examples, work, args.model)
        for name in datasets:
            frame = examples[name]["train"]
            frame = frame.head(args.max_train) if args.max_train else frame
            for recipe in recipes:
                report["train"][recipe][name] = train_once(base, frame, training, RECIPES[recipe],
                                                           work / name / recipe, config["seed"])  # fmt: skip
        for recipe in recipes:
            report["train"][recipe]["total"] = totals({k: v for k, v in report["train"][recipe].items()})
        if len(recipes) == 2:
            report["train"]["new_over_today"] = round(
                report["train"]["new"]["total"]["tokens_per_second"]
                / report["train"]["today"]["total"]["tokens_per_second"], 2)  # fmt: skip
        if not args.no_generate:
            report["generate"] = generate_section(config, examples, base, datasets, args)
    report["goals"] = {"train_new_over_today": 1.5, "generate_batched_over_one_at_a_time": 5.0}
    write_report(report, args.out, "cpu_bench")
    return report


def generate_section(config: dict[str, Any], examples: dict[str, Any], base: Path, datasets: list[str],
                     args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """The batched engine against a one-at-a-time loop on each dataset's test prompts.

    The tiny base model stands in for a trained one: the speed of greedy decoding does not
    depend on what the weights say, and a random model rarely stops early, so both paths
    generate about ``max_new_tokens`` per prompt.
    """
    from tracekd.model.generate import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(base))
    model = load_model(str(base), None)
    max_new = args.max_new_tokens or config["inference"]["max_new_tokens"]
    out = {}
    for name in datasets:
        ids = chat_ids(tokenizer, examples[name]["test"]["prompt"].to_list(), ChatFormat())
        out[name] = generation(model, tokenizer, ids, max_new_tokens=max_new,
                               batch_size=config["inference"]["batch_size"], single=min(args.gen_single, len(ids)))  # fmt: skip
    return out


if __name__ == "__main__":
    main()
