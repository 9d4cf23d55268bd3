"""What the commands print besides their results: an error a person can act on, as one
line on stderr with exit status 1 (no traceback). The one place that prints errors.
"""

from __future__ import annotations

import sys

import click

from daskloc.stores.base import StoreBusyError

#: Errors a person can act on: printed as one line, exit status 1, no traceback.
#: (StoreBusyError: another writer holds the store, or a program keeps an HDF5 file open.)
EXPECTED_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                   ValueError, TypeError, IndexError, OSError, StoreBusyError)


def fail(exc):
    """Print ``exc`` as ``daskloc: error: ...`` on stderr and exit with status 1."""
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    click.echo(f"daskloc: error: {message}", err=True)
    sys.exit(1)
