# Fine-tuning: a tiny local model for the demo, then SFT per (dataset, model, setting).


rule build_model:
    input:
        # the tokenizer learns every dataset's prompts and targets
        expand(
            f"{R}/{{dataset}}/traces/{{setting}}.parquet",
            dataset=DATASETS,
            setting=SETTINGS,
        ),
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
        traces=f"{R}/{{dataset}}/traces/{{setting}}.parquet",
        base=base_model,
    output:
        directory(f"{R}/{{dataset}}/{{model}}/{{setting}}/adapter"),
    log:
        f"{R}/logs/train/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{dataset}}/{{model}}/{{setting}}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: job_resources("train")["threads"]
    resources:
        gpu=lambda wc: config["models"][wc.model]["gpu"],
        mem_mb=job_resources("train")["mem_mb"],
        runtime=job_resources("train")["runtime"],
    params:
        base=base_path,
        model=model_cfg,
        chat=chat_cfg,
        training=lambda wc: merged_training(config, wc.model),
        seed=config["seed"],
        # outside the output folder, so a rerun after a kill resumes from the last checkpoint
        checkpoints=lambda wc: f"{R}/{wc.dataset}/{wc.model}/{wc.setting}/checkpoints",
    script:
        "../workflow/scripts/train.py"
