"""Rule raw_data: generate or download a dataset's raw files."""

from tracekd.datasets.download import prepare_raw
from tracekd.runlog import logged

with logged(snakemake.log[0]):
    ds = snakemake.params.dataset
    prepare_raw(ds["loader"], ds["source"], snakemake.output[0], options=ds)
