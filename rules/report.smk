# Figures and tables: a confusion matrix per run, the paper's Table 3, a tidy summary.


rule confusion:
    input:
        f"{R}/{{dataset}}/{{model}}/{{setting}}/scores.parquet",
    output:
        png=report(
            f"{R}/{{dataset}}/{{model}}/{{setting}}/confusion.png",
            caption="../workflow/report/confusion.rst",
            category="Confusion matrices",
            subcategory="{dataset}",
            labels={"model": "{model}", "setting": "{setting}"},
        ),
        json=f"{R}/{{dataset}}/{{model}}/{{setting}}/confusion.json",
    log:
        f"{R}/logs/confusion/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/confusion/{{dataset}}/{{model}}/{{setting}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        title=lambda wc: f"{wc.dataset} / {wc.model} / {wc.setting}",
    script:
        "../workflow/scripts/confusion.py"


rule confusion_grid:
    input:
        expand(
            f"{R}/{{dataset}}/{{model}}/{{{{setting}}}}/confusion.json",
            dataset=DATASETS,
            model=MODELS,
        ),
    output:
        report(
            f"{R}/figures/confusion_grid_{{setting}}.png",
            caption="../workflow/report/confusion_grid.rst",
            category="Confusion matrices",
            subcategory="All datasets and models",
            labels={"setting": "{setting}"},
        ),
    log:
        f"{R}/logs/confusion_grid/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/confusion_grid/{{setting}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=[{"dataset": d, "model": m} for d in DATASETS for m in MODELS],
        datasets=DATASETS,
        models=MODELS,
        display=display_names(config),
    script:
        "../workflow/scripts/confusion_grid.py"


rule tables:
    input:
        scores=run_scores(RUNS),
    output:
        table2=report(
            f"{R}/tables/table2.tex",
            caption="../workflow/report/table2.rst",
            category="Tables",
        ),
        table3=report(
            f"{R}/tables/table3.tex",
            caption="../workflow/report/table3.rst",
            category="Tables",
        ),
        stats=report(
            f"{R}/tables/stats.tex",
            caption="../workflow/report/stats.rst",
            category="Tables",
        ),
        csv=report(
            f"{R}/tables/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
        parquet=f"{R}/tables/summary.parquet",
    log:
        f"{R}/logs/tables/tables.log",
    benchmark:
        f"{R}/benchmarks/tables/tables.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=RUNS,
        replicated=REPLICATED,
        settings=config["settings"],
        table2_dataset=config["report"]["table2_dataset"],
        table3_datasets=[
            d for d in config["report"]["table3_datasets"] if d in DATASETS
        ],
        seed=config["seed"],
        n_boot=config["report"]["bootstrap_resamples"],
        display=display_names(config),
    script:
        "../workflow/scripts/tables.py"


rule corruptions:
    input:
        scores=run_scores(SEEDED_RUNS),
    output:
        report(
            f"{R}/tables/corruptions.tex",
            caption="../workflow/report/corruptions_table.rst",
            category="Tables",
        ),
    log:
        f"{R}/logs/corruptions/corruptions.log",
    benchmark:
        f"{R}/benchmarks/corruptions/corruptions.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=SEEDED_RUNS,
        targets={s["name"]: s["target"] for s in config["settings"]},
        n_boot=config["report"]["bootstrap_resamples"],
        display=display_names(config),
    script:
        "../workflow/scripts/corruptions.py"


rule corruption_figure:
    input:
        scores=lambda wc: run_scores(dataset_runs(SETTINGS)(wc)),
    output:
        report(
            f"{R}/figures/corruptions_{{dataset}}.png",
            caption="../workflow/report/corruptions.rst",
            category="Corruptions",
            labels={"dataset": "{dataset}", "figure": "accuracy per setting"},
        ),
    log:
        f"{R}/logs/corruption_figure/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/corruption_figure/{{dataset}}.tsv"
    conda:
        "../envs/tracekd.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=dataset_runs(SETTINGS),
        kind="corruptions",
        settings=config["settings"],
        models=MODELS,
        n_boot=config["report"]["bootstrap_resamples"],
        display=display_names(config),
    script:
        "../workflow/scripts/corruption_figure.py"


use rule corruption_figure as dose_response with:
    input:
        scores=lambda wc: run_scores(dataset_runs(DOSES)(wc)),
    output:
        report(
            f"{R}/figures/dose_response_{{dataset}}.png",
            caption="../workflow/report/dose_response.rst",
            category="Corruptions",
            labels={"dataset": "{dataset}", "figure": "dose-response"},
        ),
    log:
        f"{R}/logs/dose_response/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/dose_response/{{dataset}}.tsv"
    params:
        runs=dataset_runs(DOSES),
        kind="dose_response",
        settings=config["settings"],
        models=MODELS,
        n_boot=config["report"]["bootstrap_resamples"],
        display=display_names(config),
