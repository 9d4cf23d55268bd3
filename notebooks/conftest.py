"""pytest --nbmake notebooks (part of `make test`): run the notebooks in this environment.

- The notebooks need the real recordings in ``../shared/data`` beside the repository (or
  the folder named by ``DASKLOC_DATA_DIR``). Without them they are skipped with the
  reason, as the tests are, unless ``DASKLOC_REQUIRE_DATA=1`` (CI): then they run and
  fail on the missing file.
- They name the kernel ``python3``. That must start this interpreter (the venv's), not
  another Python with another daskloc: the check below stops the run with a clear error
  if a ``python3`` kernelspec installed elsewhere (e.g. ``~/.local/share/jupyter``)
  would take over.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("DASKLOC_DATA_DIR") or HERE.parents[1] / "shared" / "data")
NEEDED = ("bulk-water.mov", "bulk_water_png", "stuck.tif")


def _kernel_problem():
    """Why the ``python3`` kernel would not be this interpreter, or None."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return "jupyter_client is not installed (pip install -e '.[test]' installs nbmake)"
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return "no 'python3' kernel: pip install ipykernel into this environment"
    exe = spec.argv[0] if spec.argv else ""
    # jupyter_client runs sys.executable for a kernelspec whose command is plain "python"
    if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return None
    if os.path.realpath(exe) == os.path.realpath(sys.executable):
        return None
    return (f"the 'python3' kernelspec in {spec.resource_dir} runs {exe}, not this "
            f"environment's {sys.executable}; remove it or reinstall ipykernel here")


def pytest_collection_modifyitems(config, items):
    notebooks = [item for item in items if item.path.suffix == ".ipynb"
                 and HERE in item.path.resolve().parents]
    if not notebooks:
        return
    for item in notebooks:
        item.add_marker(pytest.mark.data)  # tests/_markers.py: they read ../shared/data
    problem = _kernel_problem()
    if problem:
        raise pytest.UsageError(f"cannot run the notebooks: {problem}")
    missing = [name for name in NEEDED if not (DATA_DIR / name).exists()]
    if missing and os.environ.get("DASKLOC_REQUIRE_DATA") != "1":
        skip = pytest.mark.skip(
            reason=f"real test data not found in {DATA_DIR} ({', '.join(missing)}); the "
                   "notebooks need it (set DASKLOC_DATA_DIR, or put it at ../shared/data)")
        for item in notebooks:
            item.add_marker(skip)
