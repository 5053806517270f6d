# Raw data (download or synthetic generation) and decomposition into one row per problem.


rule raw_data:
    output:
        directory(f"{R}/{{dataset}}/raw"),
    log:
        f"{R}/logs/raw_data/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/raw_data/{{dataset}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
    script:
        "../workflow/scripts/raw_data.py"


rule release_raw:
    output:
        directory(f"{R}/reference/trace_check_qa"),
    log:
        f"{R}/logs/release_raw/release_raw.log",
    benchmark:
        f"{R}/benchmarks/release_raw/release_raw.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        release=lookup(dpath="paper_release", within=config, default=None),
    script:
        "../workflow/scripts/release_raw.py"


rule decompose:
    input:
        f"{R}/{{dataset}}/raw",
    output:
        table=f"{R}/{{dataset}}/decomposed.parquet",
        report=f"{R}/{{dataset}}/decomposition_report.json",
        markdown=f"{R}/{{dataset}}/decomposition_report.md",
    log:
        f"{R}/logs/decompose/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/decompose/{{dataset}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        # the largest input, MS MARCO v2.1 train (809k rows, read by columns; passages only for
        # the 6,000 kept), peaks at 0.8 GB (benchmarks/marco_fullsize.py); the rest is headroom
        # for longer real passages. CoTemp and bAbI need far less.
        mem_mb=2000,
        runtime=60,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
        name=lambda wc: wc.dataset,
    script:
        "../workflow/scripts/decompose.py"
