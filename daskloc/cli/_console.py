"""What the commands print besides their results: an error a person can act on, as one
line on stderr with exit status 1 (no traceback). The one place that prints errors.
"""

from __future__ import annotations

import re
import sys

import click

#: Errors a person can act on: printed as one line, exit status 1, no traceback. With
#: them, :class:`daskloc.stores.StoreBusyError` (another writer holds the store, or a
#: program keeps an HDF5 file open): see :func:`expected_errors`.
BUILTIN_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                  ValueError, TypeError, IndexError, OSError)


def expected_errors():
    """The errors a command prints as one line: :data:`BUILTIN_ERRORS` and the stores'
    ``StoreBusyError``, imported only when an error is being handled (``daskloc
    --help`` does not import the stores)."""
    from daskloc.stores.errors import StoreBusyError

    return (*BUILTIN_ERRORS, StoreBusyError)


#: daskloc's messages name a fix in Python words, then in the CLI's: ``pass
#: overwrite=True (CLI: --overwrite)``, ``choose another output path (CLI: --out)``.
_KEYWORD_THEN_CLI = re.compile(r"\b[A-Za-z_]\w*=[^\s,;()]+ \(CLI: ([^)]*)\)")
_KEYWORD_ASIDE = re.compile(r"\(([A-Za-z_]\w*=[^,()]*), CLI: ([^)]*)\)")
_CLI_ASIDE = re.compile(r"\(CLI: ([^)]*)\)")


def cli_words(message):
    """A daskloc message in the CLI's words: each fix said for Python and for the CLI
    keeps the CLI's.

    >>> cli_words("pass overwrite=True (CLI: --overwrite) to replace it")
    'pass --overwrite to replace it'
    >>> cli_words("choose another output path (CLI: --out)")
    'choose another output path (--out)'
    >>> cli_words("another table name (table=..., CLI: --out FILE#TABLE)")
    'another table name (--out FILE#TABLE)'
    >>> cli_words("move them out (or elsewhere, CLI: --out)")  # not a keyword: kept
    'move them out (or elsewhere, CLI: --out)'
    """
    message = _KEYWORD_THEN_CLI.sub(r"\1", message)
    message = _KEYWORD_ASIDE.sub(r"(\2)", message)
    return _CLI_ASIDE.sub(r"(\1)", message)


def fail(exc):
    """Print ``exc`` as ``daskloc: error: ...`` on stderr, in the CLI's words (see
    :func:`cli_words`), and exit with status 1."""
    message = cli_words(str(exc) or exc.__class__.__name__)
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    click.echo(f"daskloc: error: {message}", err=True)
    sys.exit(1)
