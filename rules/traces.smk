# SFT examples per setting: the prompt, and the completion the setting trains on.


rule traces:
    input:
        f"{R}/{{dataset}}/decomposed.parquet",
    output:
        TRACES,
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


if REPLICATED:

    # a corrupted setting's examples per replicate, drawn with the replicate's seed
    use rule traces as traces_seed with:
        output:
            SEED_TRACES,
        log:
            f"{R}/logs/traces/{{dataset}}/seeds/{{seed}}/{{setting}}.log",
        benchmark:
            f"{R}/benchmarks/traces/{{dataset}}/seeds/{{seed}}/{{setting}}.tsv"
        params:
            setting=run_setting,
            dataset=lookup(dpath="datasets/{dataset}", within=config),
