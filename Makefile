# daskloc developer tasks. Works from a fresh clone with python3 (>= 3.11), venv and pip.
#   make venv   create .venv and install daskloc (editable) with its test extras
#   make test   run the test suite and execute the notebooks (pytest --nbmake)
#   make demo   run `daskloc demo`
#   make bench  run every benchmark (benchmarks/run_all), writing benchmarks/RESULTS.md
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp

.PHONY: venv demo test bench
.DEFAULT_GOAL := test

venv: $(STAMP)

# The interpreter exists once the venv does; a half-made venv (no bin/python) is redone.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip runs again only when pyproject.toml is newer than the stamp (or the stamp is missing);
# a failed install leaves no stamp, so the next make retries.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: venv
	$(BIN)/daskloc demo

test: venv
	$(BIN)/python -m pytest -q tests --nbmake notebooks

bench: venv
	benchmarks/run_all
