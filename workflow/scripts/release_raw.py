"""Rule release_raw: the paper's released evaluations, fetched and checksum-verified."""

from tracekd.datasets.download import fetch_release
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    written = fetch_release(snakemake.params.release, snakemake.output[0])
    print(f"{len(written)} files verified")
