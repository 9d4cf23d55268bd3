"""Sphinx configuration: the API reference (autosummary + numpydoc over ``daskloc.__all__``),
the README's guide and the notebooks (rendered by myst-nb, not executed). ``make docs``
builds it into docs/_build/html with warnings as errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import daskloc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "daskloc"
copyright = "daskloc developers"
release = daskloc.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",  # Markdown (the README) and notebooks; includes myst-parser
]

# ---- the README and the files it links to, laid out as in the repository so that its
# relative links resolve: notebooks/tutorial.ipynb and cluster/README.md become pages, the
# cluster's scripts and YAML files downloads. Copies, made on every build (docs/.gitignore
# keeps them out of git).
COPIED = [("notebooks", "*.ipynb"), ("cluster", "**/*"), ("benchmarks", "RESULTS.md")]
for folder, pattern in COPIED:
    shutil.rmtree(HERE / folder, ignore_errors=True)
    for f in sorted((ROOT / folder).glob(pattern)):
        if f.is_file():
            target = HERE / folder / f.relative_to(ROOT / folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
myst_heading_anchors = 3            # the README's [Performance](#performance) links
nb_execution_mode = "off"           # notebooks are committed without outputs; make test runs them
myst_enable_extensions = ["colon_fence"]

# ---- the API: every name of daskloc.__all__ on api.rst, through daskloc.<name> (the public
# path, whatever module defines it). A name added to __all__ and not to api.rst fails the build.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

_listed = set(re.findall(r"^ +(\w+)[ \t]*$", (HERE / "api.rst").read_text(), re.M))
_public = set(daskloc.__all__) - {"__version__"}
if _listed != _public:
    raise RuntimeError(f"docs/api.rst and daskloc.__all__ differ: missing "
                       f"{sorted(_public - _listed)}, not public {sorted(_listed - _public)}")

html_theme = "alabaster"
html_title = f"daskloc {release}"
html_static_path: list[str] = []
