# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck pytest bench bench-micro bench-compare clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	rm -f $(VENV)/.installed-*
	$(BIN)/pip install -q -e '.[test,testing,plots,postgres,dask,kueue]'
	touch $(STAMP)

install: $(STAMP)

## make run: the main job, a simulation on the embedded in-memory default, printing a report.
run: $(STAMP)
	$(BIN)/budcore simulate

## make test: lint, strict type check of src/, then the whole pytest suite.
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src adapters simulator tests benchmarks
	$(BIN)/ruff format --check src adapters simulator tests benchmarks

# mypy --strict on the core (src/) and, through a path of symlinks that gives them their import
# names (setuptools' editable finder is invisible to mypy), on the adapters and the simulator.
MYPY_PATH := $(VENV)/mypy-path
typecheck: $(STAMP)
	$(BIN)/mypy
	mkdir -p $(MYPY_PATH)
	ln -sfn $(CURDIR)/src/budcore $(MYPY_PATH)/budcore
	ln -sfn $(CURDIR)/adapters $(MYPY_PATH)/budcore_adapters
	ln -sfn $(CURDIR)/simulator $(MYPY_PATH)/budcore_simulator
	MYPYPATH=$(MYPY_PATH) $(BIN)/mypy --strict -p budcore_adapters.inmemory -p budcore_adapters.postgres -p budcore_adapters.kueue -p budcore_adapters.http -p budcore_simulator

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## make bench: every throughput script in benchmarks/ at small sizes, printing their figures
## (BENCH_ARGS=--full: the sizes benchmarks/README.md records; --only NAME: one script).
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# pytest-benchmark micro-benchmarks (benchmarks/micro/, never part of `make test`); every run is
# saved under $(BENCH_DIR)/ (gitignored), and bench-compare shows the last two side by side.
BENCH_DIR := .benchmarks

## make bench-micro: time the hot paths (admission cycle, find_victims, quota add, a simulated job).
bench-micro: $(STAMP)
	$(BIN)/pytest benchmarks/micro --benchmark-autosave --benchmark-storage=file://$(CURDIR)/$(BENCH_DIR) $(PYTEST_ARGS)

## make bench-compare: the last two saved bench-micro runs, one table row per run and benchmark.
bench-compare: $(STAMP)
	@runs="$$(ls -1t $(BENCH_DIR)/*/*.json 2>/dev/null | head -n 2)"; \
	if [ "$$(printf '%s\n' "$$runs" | grep -c .)" -lt 2 ]; then \
		echo "bench-compare needs two saved runs in $(BENCH_DIR)/: run 'make bench-micro' twice"; exit 1; \
	fi; \
	$(BIN)/pytest-benchmark compare --group-by=name $$runs

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .ruff_cache .hypothesis
