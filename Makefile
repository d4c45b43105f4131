# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-quick chaos chaos-quick screenshots clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aoer up --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Rewrites docs/screenshots/*.png (README) from the browser tests; needs Chromium.
screenshots: $(STAMP)
	AOER_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/browser -m browser -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

# Kill, stop and starve workers, the API and PostgreSQL (a scratch cluster the script creates
# and removes); exits 1 on any lost or duplicated job. ARGS=--strict fails on missed targets.
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(ARGS)

chaos-quick: $(STAMP)
	$(BIN)/python bench/chaos.py --quick $(ARGS)

clean:
	-test ! -x $(BIN)/aoer || $(BIN)/aoer down
	rm -rf $(VENV) .aoer .pytest_cache .mypy_cache .ruff_cache
