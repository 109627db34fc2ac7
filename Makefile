# Two commands do everything on a fresh machine with Python >= 3.11 and make:
#   make demo   - build the environment and show what the project does
#   make test   - build the environment and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint catalog bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/kwh demo

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
