# Two commands do everything on a fresh machine with Python >= 3.11 and make:
#   make demo   - build the environment and show what the project does
#   make test   - build the environment and run the test suite
#   make notebook - the research notebook in Jupyter (installs requirements-notebook.lock)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOK_STAMP := $(VENV)/.notebook-installed
# e.g. make notebook JUPYTER_ARGS="--no-browser --port 8900"; root (a container) needs --allow-root
JUPYTER_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: venv test demo notebook lint catalog bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml $(wildcard schemas/_scan/*)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/kwh demo

# Jupyter's UI is not in requirements.lock (make test does not need it); the lake is the one
# `kwh` finds ($$KWH_WAREHOUSE, .env or ./data), built by the demo if it does not exist yet
notebook: $(NOTEBOOK_STAMP)
	@$(BIN)/python -c "import sys, warehouse; sys.exit(not warehouse.LakeConfig.load().exists())" || $(BIN)/kwh demo
	$(BIN)/jupyter lab $(JUPYTER_ARGS) notebooks/research.ipynb

$(NOTEBOOK_STAMP): requirements-notebook.lock $(STAMP)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -r requirements-notebook.lock
	@touch $(NOTEBOOK_STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy connectors schemas warehouse flows simulator

catalog: venv
	$(BIN)/python -m schemas.build_catalog

bench: venv
	$(BIN)/python bench/normalize.py
	$(BIN)/python bench/ratelimit.py
	$(BIN)/python bench/warehouse.py
	$(BIN)/python bench/backfill.py
	$(BIN)/python bench/stream.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
