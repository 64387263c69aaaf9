# One command sets up .venv (idempotently) and runs a job.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast lint docs demo reproduce bench bench-stream bench-gpu clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site

test: $(STAMP) lint docs
	$(BIN)/python -m pytest -q --durations=20

# The everyday loop (the target: under 3 minutes on 2 cores); tests marked slow run in `make test` (CI).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --durations=20

demo: $(STAMP)
	$(BIN)/rankme demo

$(VENV)/.bench: $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[bench]'
	$(PIP) install -q --no-deps reptrix==0.1.0   # its metadata pulls torchvision, which it does not import
	touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python bench/bench_spectrum.py
	$(BIN)/python bench/bench_eigen.py
	$(BIN)/python bench/bench_spectrum.py --sizes 4096x256 --spectra isotropic --repeats 31 --methods rankme,floor,svdvals_fp32 --out bench/results/spectrum-small.json

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

bench-stream: $(VENV)/.bench
	$(BIN)/python bench/bench_stream.py

bench-gpu: $(VENV)/.bench
	$(BIN)/python bench/bench_spectrum.py --device cuda --methods rankme,rankme_fp32,svdvals_fp32,floor

reproduce: $(STAMP)
	$(BIN)/rankme reproduce
