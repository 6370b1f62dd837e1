# rmtcompress — developer commands. Everything runs inside .venv (created on first use).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo demo-spectra test test-slow docs-check bench bench-quick lint format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned and installed first so pip takes the local CPU wheel, never a CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,dask]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## compress a 3-layer ReLU net on Fashion-MNIST (digits if absent), train the readout, print the table
	$(BIN)/rmtcompress compress --data fashion-mnist --widths 2000,2000,1000 --out runs/demo

demo-spectra: $(STAMP)  ## Fig. 2 (left) of Gu et al. 2022: sampled CK vs equivalent vs exact limit
	$(BIN)/rmtcompress spectra --preset fig2-left --out runs/spectra --quiet

test: $(STAMP)  ## the fast suite (slow checks excluded)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)  ## only the heavier checks
	$(BIN)/python -m pytest -q -m slow -o addopts=''

docs-check: $(STAMP)  ## run every code block of README.md and docs/*.md (tests/docs/test_docs_code.py, slow ones too)
	$(BIN)/python -m pytest -q tests/docs -m '' -o addopts='-ra'

bench: $(STAMP)  ## all benchmarks; rewrites BENCHMARKS.md
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --quick

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache  # the layer contract of docs/architecture.md (pyproject [tool.importlinter])

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
