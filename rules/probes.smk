# Probes: each trace-trained run's answers with a forced trace, scored against its free run
# (in a replicated study, each seed's run: its adapter and its free predictions).
rule probe:
    input:
        traces=rules.predict.input.traces,
        decomposed=rules.predict.input.decomposed,
        base=base_model,
        adapter=adapter,
        free=rules.predict.output[0],
    output:
        probe_paths("predictions.parquet"),
    log:
        f"{R}/logs/probe/{RUN_ID}.log",
    benchmark:
        f"{R}/benchmarks/probe/{RUN_ID}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: job_resource("predict", "threads")
    resources:
        gpu=lambda wc: config["models"][wc.model]["gpu"],
        mem_mb=job_resource("predict", "mem_mb"),
        runtime=job_resource("predict", "runtime"),
    params:
        base=base_path,
        model=model_cfg,
        chat=chat_cfg,
        dataset=lookup(dpath="datasets/{dataset}", within=config),
        inference=config["inference"],
        probing=config["probing"],
        probes=PROBES,
        seed=run_seed,
        probe_seed=run_probe_seed,
    script:
        "../workflow/scripts/probe.py"


rule probe_scores:
    input:
        rules.probe.output,
    output:
        probe_paths("scores.parquet"),
    log:
        f"{R}/logs/probe_scores/{RUN_ID}.log",
    benchmark:
        f"{R}/benchmarks/probe_scores/{RUN_ID}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        dataset=lookup(dpath="datasets/{dataset}", within=config),
    script:
        "../workflow/scripts/probe_scores.py"


rule probe_tables:
    input:
        free_predictions=probed(rules.predict.output[0]),
        free_scores=probed(rules.score.output[0]),
        predictions=probe_files("predictions.parquet"),
        scores=probe_files("scores.parquet"),
    output:
        tex=report(
            f"{R}/tables/probes.tex",
            caption="../workflow/report/probes_table.rst",
            category="Tables",
        ),
        csv=f"{R}/tables/probes.csv",
        parquet=f"{R}/tables/probes.parquet",
    log:
        f"{R}/logs/probe_tables/probe_tables.log",
    benchmark:
        f"{R}/benchmarks/probe_tables/probe_tables.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=PROBED_RUNS,
        replicated=REPLICATED,
        probes=PROBES,
        answer_rules={d: config["datasets"][d]["answer_rule"] for d in DATASETS},
        seed=config["seed"],
        n_boot=config["report"]["bootstrap_resamples"],
        display=display_names(config),
    script:
        "../workflow/scripts/probe_tables.py"


rule probe_figure:
    input:
        rules.probe_tables.output.parquet,
    output:
        report(
            f"{R}/figures/probes_{{dataset}}.png",
            caption="../workflow/report/probes_figure.rst",
            category="Probes",
            labels={"dataset": "{dataset}"},
        ),
    log:
        f"{R}/logs/probe_figure/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/probe_figure/{{dataset}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        display=display_names(config),
    script:
        "../workflow/scripts/probe_figure.py"
