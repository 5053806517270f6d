# Per-sample answer and trace scores.


rule score:
    input:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/predictions.parquet",
    output:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/scores.parquet",
    log:
        f"{R}/logs/score/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{dataset}}/{{model}}/{{setting}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        # the dataset's block: its answer_rule names the plug-in, the rest are its options
        dataset=lookup(dpath="datasets/{dataset}", within=config),
    script:
        "../workflow/scripts/score.py"


rule release_summary:
    input:
        raw=rules.release_raw.output[0],
        decomposed=release_decomposed,
    output:
        csv=report(
            f"{R}/reference/summary.csv",
            caption="../workflow/report/release_summary.rst",
            category="Reference",
        ),
        tex=f"{R}/reference/summary.tex",
    log:
        f"{R}/logs/release_summary/release_summary.log",
    benchmark:
        f"{R}/benchmarks/release_summary/release_summary.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        release=lookup(dpath="paper_release", within=config, default=None),
        decomposition=release_decomposition(config),
    script:
        "../workflow/scripts/release_summary.py"


rule score_reference:
    input:
        lambda wc: reference_entry(wc.name)["path"],
    output:
        f"{R}/reference/{{name}}.json",
    log:
        f"{R}/logs/score_reference/{{name}}.log",
    benchmark:
        f"{R}/benchmarks/score_reference/{{name}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry=lambda wc: reference_entry(wc.name),
    script:
        "../workflow/scripts/score_reference.py"
