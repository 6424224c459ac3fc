# BreastSubtype developer commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml training/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test,slicer,web]"
	$(PIP) install -q -e "./training[test]"
	# PyRadiomics only builds against the numpy already installed (radiomics baseline, benchmark).
	$(PIP) install -q --no-build-isolation pyradiomics==3.0.1 || echo "warning: PyRadiomics not installed; radiomics baseline disabled"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/breast-subtype demo --out demo-output

test: $(STAMP)
	# UTF-8 mode: in the full suite a library switches the process to the C locale, after which
	# open() without an encoding reads ASCII (seen in training tests after the MRML/web tests).
	PYTHONUTF8=1 $(PY) -m pytest -q Testing training/tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/bench_rois.py
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_predict.py
	$(PY) benchmarks/heatmap_shares.py
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
