# Two commands on a fresh clone:  make demo  (the whole study at toy scale on CPU)  and  make test.
VENV   ?= .venv
PYTHON ?= python3
CORES  ?= 2
# the exact versions installed: the CPU lock (torch 2.13.0 resolves to a local CPU build where
# a machine provides one, as CI's does, else to PyPI's build); a GPU host: LOCK=requirements/gpu.txt
LOCK   ?= requirements/cpu.txt
PY      = $(VENV)/bin/python
SMK     = $(VENV)/bin/snakemake
# the locking tool, installed into the venv by `make lock` only
UV_VERSION = 0.13.9
UV      = $(VENV)/bin/uv
# passed to every compile: `make lock UPGRADE=--upgrade` moves to the newest versions allowed,
# `make lock UPGRADE="--upgrade-package polars"` one package; plain `make lock` keeps the pins
UPGRADE ?=
# every config shipped in config/ (make lint checks each)
CONFIGS = $(wildcard config/*.yaml)

.PHONY: demo demo-extended test lint lock config-docs dry-run report clean-demo

$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $@

demo: $(VENV)/.installed  ## the study on synthetic bAbI with a tiny model, under results/demo
	$(SMK) all --configfile config/demo.yaml --cores $(CORES) --printshellcmds
	@echo; cat results/demo/tables/summary.csv

demo-extended: $(VENV)/.installed  ## bAbI, every corruption scheme, two seeds, under results/demo-extended
	$(SMK) all --configfile config/demo-extended.yaml --cores $(CORES) --printshellcmds
	@echo; cat results/demo-extended/tables/summary.csv

# one worker per core; a whole test file stays on one worker, so its module fixtures are built
# once (the end-to-end runs start in the background at collection: tests/conftest.py)
test: $(VENV)/.installed  ## unit, property and end-to-end DAG tests
	$(PY) -m pytest -n $(CORES) --dist loadfile

lint: $(VENV)/.installed  ## ruff, snakefmt and Snakemake's linter on every shipped config
	$(PY) -m ruff check .
	$(VENV)/bin/snakefmt --check Snakefile rules/
	for config in $(CONFIGS); do $(SMK) --configfile $$config --lint || exit 1; done

# The locks, resolved from pyproject.toml by uv: the CPU stack with the test tools (what `make`
# installs), the light rules' subset at the same versions, and the GPU stack for Linux x86_64
# with CUDA (vLLM pins its torch); then envs/*.yaml, written from them.
lock: $(VENV)/.installed  ## refresh requirements/*.txt and envs/*.yaml
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip compile pyproject.toml --extra test --config-file requirements/cpu.toml \
		--universal --python-version 3.11 $(UPGRADE) -o requirements/cpu.txt
	$(UV) pip compile requirements/light.in --constraint requirements/cpu.txt \
		--universal --python-version 3.11 $(UPGRADE) -o requirements/light.txt
	$(UV) pip compile pyproject.toml --extra gpu --extra tracking --no-config \
		--python-platform x86_64-manylinux_2_28 --python-version 3.11 $(UPGRADE) \
		-o requirements/gpu.txt
	$(PY) requirements/write_envs.py

config-docs: $(VENV)/.installed  ## config/README.md from the schema's descriptions
	$(PY) -c 'import sys, tracekd.config as c; sys.stdout.write(c.config_reference(c.load_schema()))' \
		> config/README.md.tmp
	mv config/README.md.tmp config/README.md

dry-run: $(VENV)/.installed  ## plan the paper's grid (config/config.yaml)
	$(SMK) -n --quiet rules all

report: $(VENV)/.installed  ## HTML report of the demo
	$(SMK) --configfile config/demo.yaml --report results/demo/report.html

clean-demo:
	rm -rf results/demo results/demo-extended
