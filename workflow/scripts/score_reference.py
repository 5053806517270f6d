"""Rule score_reference: score predictions made elsewhere (e.g. the paper's released outputs)."""

from tracekd.evaluate.reference import score_reference
from tracekd.io import write_json
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    entry = snakemake.params.entry
    if entry["format"] != "trace_check_qa":
        raise ValueError(f"unknown format {entry['format']!r}")
    result = score_reference(
        snakemake.input[0], entry["dataset"], variant=entry["variant"], gold_facts=entry["gold_facts"]
    )
    write_json(result, snakemake.output[0])
