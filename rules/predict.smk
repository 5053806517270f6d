# Greedy generation on the test split, parsed into trace steps and answer.


rule predict:
    input:
        traces=run_traces,
        decomposed=f"{R}/{{dataset}}/decomposed.parquet",
        base=base_model,
        adapter=adapter,
    output:
        f"{RUN}/predictions.parquet",
    log:
        f"{R}/logs/predict/{RUN_ID}.log",
    benchmark:
        f"{R}/benchmarks/predict/{RUN_ID}.tsv"
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
        dataset=lambda wc: config["datasets"][wc.dataset],
        inference=config["inference"],
        seed=run_seed,
    script:
        "../workflow/scripts/predict.py"
