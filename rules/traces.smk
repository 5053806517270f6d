# SFT examples per setting: the prompt, and the completion the setting trains on.


rule traces:
    input:
        f"{R}/{{dataset}}/decomposed.parquet",
    output:
        f"{R}/{{dataset}}/traces/{{setting}}.parquet",
    log:
        f"{R}/logs/traces/{{dataset}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/traces/{{dataset}}/{{setting}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        setting=setting_cfg,
        dataset=lambda wc: config["datasets"][wc.dataset],
    script:
        "../workflow/scripts/traces.py"
