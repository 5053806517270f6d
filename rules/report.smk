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
    params:
        title=lambda wc: f"{wc.dataset} / {wc.model} / {wc.setting}",
    log:
        f"{R}/logs/confusion/{{dataset}}/{{model}}/{{setting}}.log",
    benchmark:
        f"{R}/benchmarks/confusion/{{dataset}}/{{model}}/{{setting}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tracekd.yaml"
    script:
        "../workflow/scripts/confusion.py"


rule tables:
    input:
        scores=expand(
            f"{R}/{{dataset}}/{{model}}/{{setting}}/scores.parquet",
            dataset=DATASETS,
            model=MODELS,
            setting=SETTINGS,
        ),
    output:
        table3=report(
            f"{R}/tables/table3.tex",
            caption="../workflow/report/table3.rst",
            category="Tables",
        ),
        csv=f"{R}/tables/summary.csv",
        parquet=f"{R}/tables/summary.parquet",
    params:
        runs=[
            {"dataset": d, "model": m, "setting": s}
            for d in DATASETS
            for m in MODELS
            for s in SETTINGS
        ],
        settings=config["settings"],
        table3_datasets=[d for d in config["report"]["table3_datasets"] if d in DATASETS],
    log:
        f"{R}/logs/tables/tables.log",
    benchmark:
        f"{R}/benchmarks/tables/tables.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tracekd.yaml"
    script:
        "../workflow/scripts/tables.py"
