# SFT examples per setting: the prompt, and the completion the setting trains on.


rule traces:
    input:
        f"{R}/{{dataset}}/decomposed.parquet",
    output:
        f"{R}/{{dataset}}/traces/{{setting}}.parquet",
    params:
        setting=setting_cfg,
        dataset=lambda wc: config["datasets"][wc.dataset],
    log:
        f"{R}/logs/traces/{{dataset}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/traces/{{dataset}}/{{setting}}.tsv"
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/tracekd.yaml"
    script:
        "../workflow/scripts/traces.py"
