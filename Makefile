# The course's two commands: `make lab` and `make test` (see README.md).
# Both create/refresh the local virtual environment .venv with EXACTLY the versions in uv.lock.
#
# PYTHON: the interpreter for .venv, a Python >= 3.12. Found by tools/find-python unless given:
#   make test PYTHON=/path/to/python3.13
PYTHON ?=
VENV   := .venv
BIN    := $(VENV)/bin
# uv installs the lock; it lives in its own small venv (.tools/), bootstrapped with pip.
UV_VERSION := 0.13.9
UV     := .tools/bin/uv
# uv: never download a Python of its own, and put the project's environment in .venv.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Extras installed into the one environment: the course itself needs none; tests add
# `test` and `compare` (Stable-Baselines3 as a yardstick).
EXTRAS := test compare

.PHONY: FORCE env lab test bench course lock student clean-cache help

help:
	@echo "make lab     - set up .venv (locked versions) and open the course in JupyterLab"
	@echo "make test    - set up .venv and run every test (notebooks in quick mode)"
	@echo "make bench   - run every benchmark in benchmarks/ (figures in build/bench/)"
	@echo "make course  - execute every notebook in full mode into build/course/"
	@echo "make student - write solution-free copies of the notebooks into build/student/"
	@echo "make lock    - re-resolve uv.lock to the newest versions pyproject.toml allows"

# The interpreter: $(PYTHON) or what tools/find-python finds (when it finds none, it prints one
# line saying what is needed and how to get it, and the recipe stops). Expanded, and the search
# run, only where a recipe needs it.
PY = $(or $(PYTHON),$(shell tools/find-python))
# "yes" when .venv already runs the same major.minor Python as $(PY): a different interpreter
# (e.g. `make test PYTHON=python3.13` after a 3.12 run) forces a re-sync, which rebuilds .venv.
PYVER := import sys; print(*sys.version_info[:2])
VENV_PY_OK = $(shell p="$(PY)"; [ -n "$$p" ] && [ "`$(BIN)/python -c '$(PYVER)' 2>/dev/null`" = "`$$p -c '$(PYVER)'`" ] && echo yes)
.SECONDEXPANSION:

$(UV):
	@py="$(PY)"; [ -n "$$py" ] || exit 1; \
	"$$py" -m venv .tools && .tools/bin/python -m pip install -q "uv==$(UV_VERSION)"

# The course's JupyterLab settings (news pop-up off): installed as default overrides into .venv
# (share/jupyter/lab/settings/overrides.d/), so every JupyterLab run from .venv uses them; the
# user's own settings (~/.jupyter) are left alone and still win.
LAB_OVERRIDES := jupyterlab-settings/overrides.json

# Re-sync whenever pyproject.toml or uv.lock changes. --locked: fail if uv.lock no longer
# matches pyproject.toml (run `make lock`), never re-resolve silently.
# TORCH_INDEX (Linux without a GPU, README "A CPU-only torch"): skip torch and the CUDA libraries
# it pulls in, then install the locked torch version from that index instead, e.g.
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
$(VENV)/.installed: pyproject.toml uv.lock $$(if $$(VENV_PY_OK),,FORCE) $(LAB_OVERRIDES) | $(UV)
	@py="$(PY)"; [ -n "$$py" ] || exit 1; \
	skip=""; [ -z "$(TORCH_INDEX)" ] || skip=$$("$$py" tools/torch-cuda-packages --uv-flags) || exit 1; \
	set -x; $(UV) sync --locked --python "$$py" $(addprefix --extra ,$(EXTRAS)) $$skip
	@[ -z "$(TORCH_INDEX)" ] || { set -x; $(UV) pip install --python $(BIN)/python \
	    "torch==$$($(BIN)/python tools/torch-cuda-packages --torch-version)" --index-url "$(TORCH_INDEX)"; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	install -D -m 644 $(LAB_OVERRIDES) $(VENV)/share/jupyter/lab/settings/overrides.d/rl-marketing-course.json
	touch $@

FORCE:

env: $(VENV)/.installed

lock: | $(UV)
	$(UV) lock --upgrade --python "$(PY)"

# Serve the whole repository (data/, helpers/ visible) and open notebook 01. Jupyter refuses
# to run as root unless told to (containers, CI machines): allow it only there.
LAB_FLAGS := --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks/01_the_marketing_problem.ipynb
LAB_FLAGS += $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
# LAB_ARGS: extra flags for one run, e.g. `make lab LAB_ARGS=--no-browser`; tests/test_browser.py
# starts JupyterLab this way (its own port and token).
LAB_ARGS ?=

lab: env
	$(BIN)/jupyter lab $(LAB_FLAGS) $(LAB_ARGS)

test: env
	TQDM_DISABLE=1 $(BIN)/python -m pytest

# Every benchmark (a few hours on 2 cores: SB3 is slow); bench_budget.py also runs its
# several-channel cases (notebook 06), without and with carryover.
bench: env
	@mkdir -p build/bench
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done
	@echo "== benchmarks/bench_budget.py --channels"; $(BIN)/python benchmarks/bench_budget.py --channels --sb3-steps 204800
	@echo "== benchmarks/bench_budget.py --channels --adstock 0.5"; $(BIN)/python benchmarks/bench_budget.py --channels --adstock 0.5 --skip-sb3

course: env
	$(BIN)/python -m helpers.course

# Solution-free copies of the notebooks for learners, in build/student/ (TEACHING.md).
student: env
	$(BIN)/python -m helpers.course --student

clean-cache:
	rm -rf build/cache
