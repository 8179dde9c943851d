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
# ... and compile every package's bytecode while installing: the first `make check` and the first
# notebook then import PyMC and torch without compiling them (about 35 s of CPU otherwise).
export UV_COMPILE_BYTECODE := 1
# Two installs into the one .venv, from the same lock:
#   the attendee's (`make lab`, `make check`, `make course`): the course's own dependencies only;
#   the developer's (`make test`, `make bench`): plus these extras (pytest, Playwright, SB3).
TEST_EXTRAS := test compare

.PHONY: FORCE env test-env lab test bench course lock student clean-cache help

help:
	@echo "make lab     - set up .venv (locked versions) and open the course in JupyterLab"
	@echo "make check   - set up .venv, then check it: versions, kernel, caches, a tiny fit and PPO update (~1 min)"
	@echo "make test    - set up .venv and run every test (notebooks in quick mode)"
	@echo "make bench   - run every benchmark in benchmarks/ (figures in build/bench/)"
	@echo "make course  - execute every notebook in full mode into build/course/"
	@echo "make student - write solution-free copies of the notebooks into build/student/"
	@echo "make site    - the executed notebooks as a static HTML site in build/site/ (runs what is stale)"
	@echo "make cache-bundle  - build/cache as one file, build/rl-course-cache.tar.gz (TEACHING.md)"
	@echo "make cache-restore BUNDLE=FILE - unpack such a bundle into build/cache"
	@echo "make clean-cache [KEEP=posteriors] - delete the caches (or only the trained agents and sweeps)"
	@echo "make lock    - re-resolve uv.lock to the newest versions pyproject.toml allows"
	@echo "make binder  - regenerate binder/requirements.txt (Binder, repo2docker) from uv.lock"

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
# TORCH_INDEX (Linux without an NVIDIA GPU, README "Install"): skip torch and the CUDA libraries
# it pulls in, then install the locked torch version from that index instead, e.g.
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# $(call sync,UV SYNC FLAGS): install the lock into .venv, then register the course's kernel and
# install the JupyterLab settings. POSIX commands only (no GNU `install -D`): macOS runs it too.
define sync
	@py="$(PY)"; [ -n "$$py" ] || exit 1; \
	skip=""; [ -z "$(TORCH_INDEX)" ] || skip=$$("$$py" tools/torch-cuda-packages --uv-flags) || exit 1; \
	set -x; $(UV) sync --locked --python "$$py" $(1) $$skip
	@[ -z "$(TORCH_INDEX)" ] || { set -x; $(UV) pip install --python $(BIN)/python \
	    "torch==$$($(BIN)/python tools/torch-cuda-packages --torch-version)" --index-url "$(TORCH_INDEX)"; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	mkdir -p $(VENV)/share/jupyter/lab/settings/overrides.d
	cp $(LAB_OVERRIDES) $(VENV)/share/jupyter/lab/settings/overrides.d/rl-marketing-course.json
endef

# The attendee's install. --inexact: keep packages a developer's `make test` added.
$(VENV)/.installed-course: pyproject.toml uv.lock $$(if $$(VENV_PY_OK),,FORCE) $(LAB_OVERRIDES) | $(UV)
	$(call sync,--inexact)
	touch $@

# The developer's install: the same lock plus TEST_EXTRAS (exact: nothing else stays installed).
$(VENV)/.installed-test: pyproject.toml uv.lock $$(if $$(VENV_PY_OK),,FORCE) $(LAB_OVERRIDES) | $(UV)
	$(call sync,$(addprefix --extra ,$(TEST_EXTRAS)))
	touch $(VENV)/.installed-course $@

FORCE:

env: $(VENV)/.installed-course

test-env: $(VENV)/.installed-test

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

# The attendee's pre-flight check (helpers/check.py): one line per step, then "Environment OK ..."
# or one line per problem with its fix (exit code 1). Without make: `python -m helpers.check`.
.PHONY: check
check: env
	$(BIN)/python -m helpers.check

test: test-env
	TQDM_DISABLE=1 $(BIN)/python -m pytest

# Every benchmark (a few hours on 2 cores: SB3 is slow); bench_budget.py also runs its
# several-channel cases (notebook 06), without and with carryover.
bench: test-env
	@mkdir -p build/bench
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done
	@echo "== benchmarks/bench_budget.py --channels"; $(BIN)/python benchmarks/bench_budget.py --channels --sb3-steps 204800
	@echo "== benchmarks/bench_budget.py --channels --adstock 0.5"; $(BIN)/python benchmarks/bench_budget.py --channels --adstock 0.5 --skip-sb3

course: env
	$(BIN)/python -m helpers.course

# Solution-free copies of the notebooks for learners, in build/student/ (TEACHING.md).
student: env
	$(BIN)/python -m helpers.course --student

# KEEP=posteriors: delete the training caches only (agents, sweeps: build/cache/training/) and keep
# the fitted posteriors (build/cache/*.nc, and new_data/: notebook 05's refit on one more month).
clean-cache:
ifeq ($(KEEP),)
	rm -rf build/cache
else ifeq ($(KEEP),posteriors)
	rm -rf build/cache/training
else
	@echo "make clean-cache: KEEP=$(KEEP) is not a choice; use KEEP=posteriors, or no KEEP to delete every cache" >&2; exit 2
endif

# build/course/<notebook>.ipynb, executed in full mode, is remade when the notebook, the helpers or
# the data changed since (make's own timestamps): `make site` reruns only what is stale.
COURSE_NBS := $(notdir $(wildcard notebooks/[0-9]*.ipynb))
COURSE_OUT := $(addprefix build/course/,$(COURSE_NBS))
COURSE_DEPS := $(filter-out helpers/site.py helpers/cachebundle.py helpers/check.py,$(wildcard helpers/*.py)) $(wildcard data/*.csv data/*/*.csv)
build/course/%.ipynb: notebooks/%.ipynb $(COURSE_DEPS) | env
	$(BIN)/python -m helpers.course $<

# The executed notebooks as a static HTML site (figures embedded, links between pages), for a
# laptop that gives up: open build/site/index.html.
.PHONY: site
site: $(COURSE_OUT) | env
	$(BIN)/python -m helpers.site

# The caches after a full run (`make course`) as one file to hand around, and its restore.
BUNDLE ?= build/rl-course-cache.tar.gz
.PHONY: cache-bundle cache-restore
cache-bundle: $(COURSE_OUT) | env
	$(BIN)/python -m helpers.cachebundle create --out "$(BUNDLE)"

cache-restore: | env
	$(BIN)/python -m helpers.cachebundle restore "$(BUNDLE)"

# binder/requirements.txt for repo2docker (Binder, a Zero to JupyterHub image), which does not read
# uv.lock: the attendee's pins exported from it, torch from PyTorch's CPU index (tools/export-binder).
# tests/test_binder.py fails when the file no longer matches the lock.
.PHONY: binder
binder: | $(UV)
	@py="$(PY)"; [ -n "$$py" ] || exit 1; "$$py" tools/export-binder --uv $(UV)
