# Two commands on a fresh clone:  make demo  (the whole study at toy scale on CPU)  and  make test.
VENV   ?= .venv
PYTHON ?= python3
CORES  ?= 2
# torch first, so the project's ">=" pin is already met: 2.13.0 resolves to a local CPU build
# where one is provided (CI), else to PyPI's build. Override, e.g.  make demo TORCH=torch
TORCH  ?= torch==2.13.0
PY      = $(VENV)/bin/python
SMK     = $(VENV)/bin/snakemake

.PHONY: demo test lint dry-run report clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed  ## the study on synthetic bAbI with a tiny model, under results/demo
	$(SMK) all --configfile config/demo.yaml --cores $(CORES) --printshellcmds
	@echo; cat results/demo/tables/summary.csv

test: $(VENV)/.installed  ## unit, property and end-to-end DAG tests
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(SMK) --lint
	$(SMK) --configfile config/demo.yaml --lint

dry-run: $(VENV)/.installed  ## plan the paper's grid (config/config.yaml)
	$(SMK) -n --quiet rules all

report: $(VENV)/.installed  ## HTML report of the demo
	$(SMK) --configfile config/demo.yaml --report results/demo/report.html

clean-demo:
	rm -rf results/demo
