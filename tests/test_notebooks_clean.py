"""The notebooks in notebooks/ are committed without outputs.

`make test` executes them (pytest --nbmake, which does not write back); what is in git
is their source only: no outputs, no execution counts, no widget state. Outputs make
diffs unreadable, bloat the repository and can leak local paths. Before committing
a notebook run in Jupyter, strip it:

    .venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb  # with jupyterlab
    # or: pip install nbstripout; nbstripout notebooks/*.ipynb (nbstripout --install: on commit)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
STRIP = "strip it: jupyter nbconvert --clear-output --inplace {path} (or nbstripout {path})"


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"tutorial.ipynb", "scaling.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb.get("nbformat") == 4, f"{path.name}: not an nbformat 4 notebook"
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell.get("cell_type") == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    shown = ", ".join(map(str, dirty[:8])) + (", ..." if len(dirty) > 8 else "")
    assert not dirty, (f"{path.name} holds outputs or execution counts in {len(dirty)} "
                       f"code cell(s) (cells {shown}); "
                       + STRIP.format(path=f"notebooks/{path.name}"))
    assert "widgets" not in nb.get("metadata", {}), (
        f"{path.name} holds widget state in its metadata; "
        + STRIP.format(path=f"notebooks/{path.name}"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_kernel_is_python3(path):
    # nbmake starts the kernel the notebook names; "python3" is this environment's
    # ipykernel (see notebooks/conftest.py), any other name may be another Python.
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3", nb["metadata"].get("kernelspec")
