# Per-sample answer and trace scores.


rule score:
    input:
        rules.predict.output[0],
    output:
        f"{RUN}/scores.parquet",
    log:
        f"{R}/logs/score/{RUN_ID}.log",
    benchmark:
        f"{R}/benchmarks/score/{RUN_ID}.tsv"
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


if REPLICATED:

    rule pool_seeds:
        input:
            expand(
                f"{R}/{{{{dataset}}}}/{{{{model}}}}/{{{{setting}}}}/seeds/{{seed}}/scores.parquet",
                seed=SEEDS,
            ),
        output:
            f"{R}/{{dataset}}/{{model}}/{{setting}}/scores.parquet",
        log:
            f"{R}/logs/pool_seeds/{{dataset}}/{{model}}/{{setting}}.log",
        benchmark:
            f"{R}/benchmarks/pool_seeds/{{dataset}}/{{model}}/{{setting}}.tsv"
        conda:
            "../envs/tracekd.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            seeds=SEEDS,
        script:
            "../workflow/scripts/pool_seeds.py"


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
