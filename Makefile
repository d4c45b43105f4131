# The two commands a newcomer needs: `make run` and `make test`.
# The newest supported Python that runs here (3.13, 3.12, 3.11, else python3 if it is one of
# them); `make PYTHON=...` picks another. A pyenv shim of a version not selected fails the
# check and is skipped.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            $$p -c '$(SUPPORTED)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-quick bench-scale chaos chaos-quick screenshots clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "needs Python 3.11, 3.12 or 3.13 on PATH"; exit 1; }
	@$(PYTHON) -c '$(SUPPORTED)' || \
	  { echo "needs Python 3.11-3.13; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
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
	$(BIN)/mypy bench
	$(BIN)/lint-imports

# The suite in TEST_PROCESSES pytest processes (pytest-xdist; each migrates its own template
# database, every test gets its own copy). Work stealing keeps both busy to the end: the
# longest tests take 1-2 minutes. TEST_PROCESSES=0 runs it in this process.
TEST_PROCESSES ?= 2
test: lint
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal

# Rewrites docs/screenshots/*.png (README) from the browser tests; needs Chromium.
screenshots: $(STAMP)
	AOER_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/browser -m browser -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

# 1,000,000 and 100,000 tenants x 60 days (bench/scale.py; checks free disk first, ~20 GiB,
# and takes hours on a quiet host). ARGS="--tenants 20000" checks the harness in minutes.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(ARGS)

# Kill, stop and starve workers, the API and PostgreSQL (a scratch cluster the script creates
# and removes); exits 1 on any lost or duplicated job. ARGS=--strict fails on missed targets.
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(ARGS)

chaos-quick: $(STAMP)
	$(BIN)/python bench/chaos.py --quick $(ARGS)

clean:
	-test ! -x $(BIN)/aoer || $(BIN)/aoer down
	rm -rf $(VENV) .aoer .pytest_cache .mypy_cache .ruff_cache
