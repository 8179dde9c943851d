# The course's two commands: `make lab` and `make test` (see README.md).
# Both create/refresh a local virtual environment in .venv from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Extras installed into the one environment: the course itself needs none; tests add
# `test` and `compare` (Stable-Baselines3 as a yardstick).
EXTRAS := test,compare

.PHONY: env lab test bench course clean-cache help

help:
	@echo "make lab     - set up .venv and open the course in JupyterLab"
	@echo "make test    - set up .venv and run every test (notebooks in quick mode)"
	@echo "make bench   - run every benchmark in benchmarks/ (figures in build/bench/)"
	@echo "make course  - execute every notebook in full mode into build/course/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $@

env: $(VENV)/.installed

# Serve the whole repository (data/, helpers/ visible) and open notebook 01. Jupyter refuses
# to run as root unless told to (containers, CI machines): allow it only there.
LAB_FLAGS := --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks/01_the_marketing_problem.ipynb
LAB_FLAGS += $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: env
	$(BIN)/jupyter lab $(LAB_FLAGS)

test: env
	TQDM_DISABLE=1 $(BIN)/python -m pytest

bench: env
	@mkdir -p build/bench
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

course: env
	$(BIN)/python -m helpers.course

clean-cache:
	rm -rf build/cache
