# daskloc developer tasks. Works from a fresh clone with python3 (>= 3.11), venv and pip.
#   make venv       create .venv and install daskloc (editable) with its test, lint and docs extras
#   make test       run the test suite and execute the notebooks (pytest --nbmake)
#   make test-fast  the tests not marked slow or services (no servers needed; a few minutes)
#   make lint       ruff and the import-linter contracts (pyproject.toml)
#   make docs       the Sphinx API reference into docs/_build/html, warnings as errors
#   make demo       run `daskloc demo`
#   make bench      run every benchmark (benchmarks/run_all), writing benchmarks/RESULTS.md
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp
EXTRAS := all,test,lint,docs

.PHONY: venv demo test test-fast lint docs bench
.DEFAULT_GOAL := test

venv: $(STAMP)

# The interpreter exists once the venv does; a half-made venv (no bin/python) is redone.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip runs again only when pyproject.toml is newer than the stamp (or the stamp is missing);
# a failed install leaves no stamp, so the next make retries.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

demo: venv
	$(BIN)/daskloc demo

# The package's docstring examples run as doctests too (--doctest-modules daskloc).
test: venv
	$(BIN)/python -m pytest -q tests --nbmake notebooks --doctest-modules daskloc

# Markers are registered in pyproject.toml: services (a server or tool from .ci/run), data
# (../shared/data), slow (tests/_markers.py says how they are kept true).
test-fast: venv
	$(BIN)/python -m pytest -q tests --doctest-modules daskloc -m "not slow and not services"

lint: venv
	$(BIN)/ruff check daskloc tests benchmarks docs
	$(BIN)/lint-imports

docs: venv
	$(BIN)/sphinx-build -q -W --keep-going -b html docs docs/_build/html

bench: venv
	benchmarks/run_all
