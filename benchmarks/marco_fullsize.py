"""MS MARCO at full size: the decomposition of a generated v2.1 train split, timed.

Generates (once, cached) a folder of parquet shards with the layout of the hub's
``microsoft/ms_marco`` v2.1 train files and the real split's size, then runs the ``decompose``
rule's body on it with the paper's MARCO block of ``config/config.yaml`` (seeded 80/20 split,
5,000 train and 1,000 test problems) and prints one JSON object: rows read, seconds, peak RSS,
and the SHA-256 of the two outputs (so that two versions of the code can be compared at full size).

The layout, as in the hub's shards (``datasets`` writes 1,000-row row groups, snappy)::

    answers            list<string>
    passages           struct<is_selected: list<int32>, passage_text: list<string>, url: list<string>>
    query              string
    query_id           int32
    query_type         string (upper case in v2.1)
    wellFormedAnswers  list<string>

The rows: 808,731 queries in 7 shards, 6-10 passages (most have ten) of about 70 words each,
4.2 KB a query in memory (the hub's card gives 3.46 GB for the split: 4.3 KB), 37.8% of them
answered ``"No Answer Present."``, 2.5% of the answered ones without a selected passage, query
types in the split's proportions. Words come from a seeded pseudo-vocabulary (about five
letters a word), so no two passages are the same; the shards take 2.1 GB on disk.

    python benchmarks/marco_fullsize.py --data /tmp/marco_v21       # generate if missing, then time
    python benchmarks/marco_fullsize.py --data /tmp/marco_v21 --generate-only
    python benchmarks/marco_fullsize.py --data /tmp/m --rows 20000 --shards 3   # a small copy

The data folder must lie outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]

#: the size of the v2.1 train split (the hub's dataset card) and its number of shards
ROWS = 808_731
SHARDS = 7
ROW_GROUP = 1_000  # the ``datasets`` library's default row-group size

NO_ANSWER = "No Answer Present."
NO_ANSWER_SHARE = 0.378  # v2.1 train: about 503k of the 809k queries have an answer
NO_SELECTED_SHARE = 0.025  # answered queries without a passage marked is_selected
#: query types in upper case as in v2.1, with their shares of the split
QUERY_TYPES = {"DESCRIPTION": 0.53, "NUMERIC": 0.26, "ENTITY": 0.09, "LOCATION": 0.06, "PERSON": 0.06}
#: passages per query (most v2.1 queries have ten)
PASSAGES = {10: 0.55, 9: 0.15, 8: 0.12, 7: 0.10, 6: 0.08}
SENTENCES_PER_PASSAGE = 5  # of 7-21 words: about 70 words, 400 characters a passage

SCHEMA = pa.schema(
    [
        ("answers", pa.list_(pa.string())),
        (
            "passages",
            pa.struct(
                [
                    ("is_selected", pa.list_(pa.int32())),
                    ("passage_text", pa.list_(pa.string())),
                    ("url", pa.list_(pa.string())),
                ]
            ),
        ),
        ("query", pa.string()),
        ("query_id", pa.int32()),
        ("query_type", pa.string()),
        ("wellFormedAnswers", pa.list_(pa.string())),
    ]
)


# --------------------------------------------------------------------------- generation


def _vocabulary(rng: np.random.Generator, size: int = 30_000) -> list[str]:
    """Pseudo-words of about 4.8 letters on average (as English), letters drawn with roughly
    English frequencies."""
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    weights = 1.0 / np.arange(1, 27) ** 0.9
    lengths = np.minimum(1 + rng.poisson(3.8, size), 14)
    codes = rng.choice(26, size=int(lengths.sum()), p=weights / weights.sum())
    words, at = [], 0
    for n in lengths:
        words.append("".join(letters[codes[at : at + n]]))
        at += n
    return words


def _sentences(rng: np.random.Generator, words: list[str], size: int) -> pa.Array:
    """``size`` sentences of 7-21 Zipf-distributed words, capitalised, with a full stop."""
    ranks = np.arange(1, len(words) + 1)
    p = 1.0 / ranks
    lengths = rng.integers(7, 22, size)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=p / p.sum())
    out, at = [], 0
    for n in lengths:
        text = " ".join(words[i] for i in picks[at : at + n])
        out.append(text[0].upper() + text[1:] + ".")
        at += n
    return pa.array(out, pa.string())


def _join(parts: list[pa.Array], sep: str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _lists(lengths: np.ndarray, values: pa.Array) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _flags(rng: np.random.Generator, n_passages: np.ndarray, answered: np.ndarray) -> pa.Array:
    """is_selected lists: answered rows mostly one selected passage (some two or three, a few
    none); unanswered rows mostly none."""
    n = len(n_passages)
    selected = np.where(
        answered,
        rng.choice([0, 1, 2, 3], size=n, p=[NO_SELECTED_SHARE, 0.885, 0.075, 0.015]),
        rng.choice([0, 1], size=n, p=[0.95, 0.05]),
    )
    flat = np.zeros(int(n_passages.sum()), dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(n_passages)[:-1]])
    for k in (1, 2, 3):
        rows = np.flatnonzero(selected >= k)
        # the k-th selected passage at a random place (a repeat only lowers the count a little)
        flat[starts[rows] + rng.integers(0, n_passages[rows])] = 1
    return _lists(n_passages, pa.array(flat, pa.int32()))


def _shard(rng: np.random.Generator, ids: np.ndarray, pool: pa.Array, words: pa.Array) -> pa.Table:
    """One shard's table: the rows with query ids ``ids``."""
    n = len(ids)
    n_passages = rng.choice(list(PASSAGES), size=n, p=list(PASSAGES.values()))
    total = int(n_passages.sum())
    texts = _join([pool.take(rng.integers(0, len(pool), total)) for _ in range(SENTENCES_PER_PASSAGE)], " ")
    w = [words.take(rng.integers(0, len(words), total)) for _ in range(4)]
    urls = pc.binary_join_element_wise("http://www.", w[0], w[1], ".com/", w[2], "/", w[3], ".html", "")
    answered = rng.random(n) >= NO_ANSWER_SHARE
    answer_text = pool.take(rng.integers(0, len(pool), n))
    second = rng.random(n) < 0.02  # a few queries have two answers
    answer_lengths = np.where(answered, 1 + second, 1)
    answer_values = []
    extra = pool.take(rng.integers(0, len(pool), n)).to_pylist()
    for i, text in enumerate(answer_text.to_pylist()):
        answer_values.append(text if answered[i] else NO_ANSWER)
        if answered[i] and second[i]:
            answer_values.append(extra[i])
    well_formed = answered & (rng.random(n) < 0.15)
    query = _join([pa.array(["what is"] * n), *(words.take(rng.integers(0, len(words), n)) for _ in range(3))], " ")
    types = rng.choice(list(QUERY_TYPES), size=n, p=list(QUERY_TYPES.values()))
    passages = pa.StructArray.from_arrays(
        [_flags(rng, n_passages, answered), _lists(n_passages, texts), _lists(n_passages, urls)],
        fields=list(SCHEMA.field("passages").type),
    )
    return pa.Table.from_arrays(
        [
            _lists(answer_lengths, pa.array(answer_values, pa.string())),
            passages,
            query,
            pa.array(ids, pa.int32()),
            pa.array(types, pa.string()),
            _lists(well_formed.astype(np.int64), answer_text.filter(pa.array(well_formed))),
        ],
        schema=SCHEMA,
    )


def generate(folder: Path, *, rows: int = ROWS, shards: int = SHARDS, seed: int = 0) -> list[Path]:
    """Write ``shards`` parquet files of ``rows`` rows in all under ``folder``; returns them."""
    rng = np.random.default_rng(seed)
    words = _vocabulary(rng)
    pool = _sentences(rng, words, 200_000)
    word_array = pa.array(words, pa.string())
    ids = rng.permutation(int(rows * 1.25))[:rows]  # unique, shuffled, with gaps as the real ids
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, part in enumerate(np.array_split(ids, shards)):
        path = folder / f"train-{k:05d}-of-{shards:05d}.parquet"
        pq.write_table(_shard(rng, part, pool, word_array), path, row_group_size=ROW_GROUP,
                       compression="snappy")  # fmt: skip
        paths.append(path)
    return paths


def ensure_data(folder: Path, *, rows: int, shards: int, seed: int) -> None:
    """Generate the shards unless ``folder`` already holds this exact set (a stamp file says)."""
    stamp = folder / "generated.txt"  # not .json: the loader would read it as data
    wanted = {"rows": rows, "shards": shards, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return
    if folder.resolve().is_relative_to(ROOT):
        raise SystemExit(f"{folder}: give a folder outside the repository (it is large)")
    for old in folder.glob("train-*.parquet"):
        old.unlink()
    generate(folder, rows=rows, shards=shards, seed=seed)
    stamp.write_text(json.dumps(wanted))


# --------------------------------------------------------------------------- timing


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(folder: Path, out: Path) -> dict[str, Any]:
    """The decompose rule's body on ``folder`` with the paper's MARCO options; the figures."""
    from tracekd.datasets import decompose
    from tracekd.io import write_json, write_parquet

    options = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["datasets"]["MARCO"]
    started = time.perf_counter()
    table, report = decompose(options["loader"], folder, options)
    write_parquet(table, out / "decomposed.parquet")
    write_json(report.to_dict(), out / "decomposition_report.json")
    seconds = time.perf_counter() - started
    counts = report.to_dict()
    return {
        "rows": sum(c["rows"] for c in counts["per_category"].values()),
        "kept": table.height,
        "dropped": counts["dropped"],
        "seconds": round(seconds, 2),
        # ru_maxrss is in KiB on Linux: the whole process's peak, imports included
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sha256": {p.name: _sha256(p) for p in sorted(out.iterdir())},
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Parse the arguments, generate the data if needed, time the decomposition, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the generated shards")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args(argv)
    ensure_data(args.data, rows=args.rows, shards=args.shards, seed=args.seed)
    if args.generate_only:
        return None
    with tempfile.TemporaryDirectory() as out:
        figures = run(args.data, Path(out))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
