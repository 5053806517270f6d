# Fine-tuning: a tiny local model for the demo, then SFT per (dataset, model, setting).


rule build_model:
    input:
        # the tokenizer learns every dataset's prompts and targets
        expand(TRACES, dataset=DATASETS, setting=SETTINGS),
    output:
        directory(f"{R}/models/{{model}}"),
    log:
        f"{R}/logs/build_model/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/build_model/{{model}}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        spec=lambda wc: config["models"][wc.model]["build"],
        seed=config["seed"],
    script:
        "../workflow/scripts/build_model.py"


rule train:
    input:
        traces=run_traces,
        base=base_model,
    output:
        directory(f"{RUN}/adapter"),
    log:
        f"{R}/logs/train/{RUN_ID}.log",
    benchmark:
        f"{R}/benchmarks/train/{RUN_ID}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: job_resource("train", "threads")
    resources:
        gpu=lambda wc: config["models"][wc.model]["gpu"],
        mem_mb=job_resource("train", "mem_mb"),
        runtime=job_resource("train", "runtime"),
    params:
        base=base_path,
        model=model_cfg,
        chat=chat_cfg,
        training=lambda wc: merged_training(config, wc.model),
        seed=run_seed,
        filler=fills_trace,
        # outside the output folder, so a rerun after a kill resumes from the last checkpoint
        checkpoints=lambda wc: f"{run_folder(wc)}/checkpoints",
    script:
        "../workflow/scripts/train.py"
