# Greedy generation on the test split, parsed into trace steps and answer.


rule predict:
    input:
        traces=f"{R}/{{dataset}}/traces/{{setting}}.parquet",
        decomposed=f"{R}/{{dataset}}/decomposed.parquet",
        base=base_model,
        adapter=adapter,
    output:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/predictions.parquet",
    log:
        f"{R}/logs/predict/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/predict/{{dataset}}/{{model}}/{{setting}}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: job_resources("predict")["threads"]
    resources:
        gpu=lambda wc: config["models"][wc.model]["gpu"],
        mem_mb=job_resources("predict")["mem_mb"],
        runtime=job_resources("predict")["runtime"],
    params:
        base=base_path,
        model=model_cfg,
        chat=chat_cfg,
        dataset=lambda wc: config["datasets"][wc.dataset],
        inference=config["inference"],
        seed=config["seed"],
    script:
        "../workflow/scripts/predict.py"
