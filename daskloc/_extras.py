"""Optional dependencies: one table of which extra installs which library, and one way
to import them with an error that names the extra.

A core install (``pip install daskloc``) locates into Parquet and Zarr stores on a
local Dask cluster; every other backend and cluster kind is an extra
(``pip install 'daskloc[hdf5]'``, ``[sql]``, ``[all]`` ...).
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "require"]

#: Importable module -> (extra that installs it, what needs it).
EXTRAS = {
    "tables": ("hdf5", "HDF5 stores (.h5)"),
    "sqlalchemy": ("sql", "SQL stores (sqlite://, postgresql://, mysql://)"),
    "psycopg": ("postgresql", "PostgreSQL stores"),
    "pymysql": ("mysql", "MySQL/MariaDB stores"),
    "s3fs": ("s3", "stores on S3 (s3://)"),
    "dask_jobqueue": ("slurm", "the SLURM cluster"),
    "dask_kubernetes": ("kubernetes", "the Kubernetes cluster"),
    "openpyxl": ("excel", "export to Excel (.xlsx)"),
    "matplotlib": ("plot", "daskloc.plot and daskloc plot"),
    "pims": ("pims", "pims readers"),
    "pylibCZIrw": ("czi", "Zeiss CZI files (.czi)"),
    "ome_zarr": ("ome", "writing OME-Zarr (ome_zarr.writer; reading needs only zarr)"),
    "trackpy": ("link", "linking trajectories (daskloc.link, daskloc link)"),
}


def missing_extra(module, exc=None):
    """The ImportError for an optional dependency that is not installed.

    Parameters
    ----------
    module : str
        A key of :data:`EXTRAS`.
    exc : ImportError, optional
        The original error (its text is appended).

    Returns
    -------
    ImportError
    """
    extra, what = EXTRAS[module]
    detail = f" ({exc})" if exc is not None else ""
    return ImportError(f"{what} need the optional dependency {module!r}, which is not "
                       f"installed{detail}: pip install 'daskloc[{extra}]' (or "
                       "'daskloc[all]' for every backend and cluster kind)")


def require(module):
    """Import an optional dependency, or raise an ImportError naming its extra.

    Parameters
    ----------
    module : str
        A key of :data:`EXTRAS` (or a submodule of one: ``"dask_kubernetes.operator"``).

    Returns
    -------
    module

    Raises
    ------
    ImportError
        The library is not installed; the message names the extra to install.

    Examples
    --------
    >>> require("tables").__name__
    'tables'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", 1)[0]
        if top not in EXTRAS or (exc.name and exc.name.split(".", 1)[0] != top):
            raise  # not the optional library itself (a broken install): as it is
        raise missing_extra(top, exc) from None
