"""Rule decompose: raw files to decomposed.parquet and the coverage report."""

import json

from tracekd.datasets import decompose
from tracekd.io import write_json, write_parquet, write_text
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    ds = snakemake.params.dataset
    table, report = decompose(ds["loader"], snakemake.input[0], ds)
    write_parquet(table, snakemake.output.table)
    write_json(report.to_dict(), snakemake.output.report)
    write_text(report.to_markdown(), snakemake.output.markdown)
    print(json.dumps(report.to_dict()))
