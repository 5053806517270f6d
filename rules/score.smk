# Per-sample answer and trace scores.


rule score:
    input:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/predictions.parquet",
    output:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/scores.parquet",
    params:
        answer_rule=lambda wc: config["datasets"][wc.dataset]["answer_rule"],
        answer_options=lambda wc: answer_options(wc.dataset),
    log:
        f"{R}/logs/score/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{dataset}}/{{model}}/{{setting}}.tsv"
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/tracekd.yaml"
    script:
        "../workflow/scripts/score.py"


rule score_reference:
    input:
        lambda wc: reference_entry(wc.name)["path"],
    output:
        f"{R}/reference/{{name}}.json",
    params:
        entry=lambda wc: reference_entry(wc.name),
    log:
        f"{R}/logs/score_reference/{{name}}.log",
    benchmark:
        f"{R}/benchmarks/score_reference/{{name}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tracekd.yaml"
    script:
        "../workflow/scripts/score_reference.py"
