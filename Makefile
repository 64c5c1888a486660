# Attention, hands-on: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One thread per process keeps notebook numbers identical between runs and machines
# and is faster on 2 cores when two notebooks run side by side.
export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0

NOTEBOOKS := $(sort $(wildcard chapters/*.ipynb))
NB ?= $(NOTEBOOKS)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help setup lab test lint unit notebooks-test execute clean-notebooks lock compat floor clean \
	book student test-browser bench mutants

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv with the pinned course environment (PYTHON=python3.12 to choose)

$(VENV)/.installed: pyproject.toml requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "make setup: $(PYTHON) not found; the course needs Python 3.11, 3.12 or 3.13: run make setup PYTHON=python3.12 (or another of them)" >&2; exit 1; }
	@$(PYTHON) tools/deps.py check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps $$($(PY) tools/deps.py no-deps)
	$(PY) -m pip install --no-deps -e .
	$(PY) -c "from d2l import torch as d2l; import attention_course; print('setup OK')"
	touch $@

lab: setup ## start JupyterLab on chapters/ (localhost, with a token; LAB_ARGS=... for more)
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=chapters \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: lint unit notebooks-test ## lint, unit tests, then every notebook under strict nbval

lint: setup ## ruff (with bugbear) over the package, tests, tools, book, bench and notebooks
	$(VENV)/bin/ruff check src tests tools chapters book bench
	$(VENV)/bin/ruff format --check src tests tools book bench

unit: setup ## unit tests of the package, the checkers and the environment
	$(PY) -m pytest tests -n 2 --ignore=tests/browser

notebooks-test: setup ## run every notebook in chapters/ under strict nbval (NB=... for some)
	$(PY) -m pytest $(NBVAL) -n 2 --dist loadfile $(NB)

execute: setup ## re-execute notebooks in place and clean them (NB=chapters/02_*.ipynb for one)
	$(PY) tools/notebooks.py execute $(NB)

clean-notebooks: setup ## strip stray metadata and renumber execution counts
	$(PY) tools/notebooks.py clean $(NOTEBOOKS)

book: setup ## build the instructors' site into book/_build/html (offline, warnings are errors)
	bash book/build.sh

student: setup ## write the student edition (solutions removed) into build/student
	$(PY) tools/student_edition.py build/student

test-browser: setup ## JupyterLab sliders and the built site in headless Chromium (needs make book)
	$(PY) -m pytest tests/browser -v

mutants: setup ## perturb the package (tools/mutants.py) and fail if a unit test misses a bug
	$(PY) tools/mutants.py

bench: setup ## benchmarks: attention vs PyTorch and d2l, memory, flash attention, KV cache, slider latency in Chromium, notebook run times
	$(PY) bench/run.py

lock: ## regenerate requirements.txt (and its runtime subset for Binder) from pyproject.toml
	$(PY) -m uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --custom-compile-command "make lock" --output-file requirements.txt --quiet
	$(PY) -m uv pip compile pyproject.toml --universal --python-version 3.11 -c requirements.txt \
	  --custom-compile-command "make lock" --output-file requirements-runtime.txt --quiet

compat: ## Python 3.11, 3.12, 3.13 with the pins, then the floor: unit tests + every notebook
	bash tools/compat.sh

floor: ## the floor run (oldest declared versions) and the Colab-style run alone (in make compat)
	bash tools/colab_check.sh

clean: ## remove build outputs (keeps .venv)
	rm -rf build book/_build book/node_modules .pytest_cache .ruff_cache .compat
