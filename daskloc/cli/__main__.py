"""python -m daskloc.cli: the command line (as python -m daskloc)."""

from daskloc.cli import main

main()
