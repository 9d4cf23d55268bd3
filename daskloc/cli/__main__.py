"""python -m daskloc.cli: the command line (as python -m daskloc)."""

from daskloc.cli import main

if __name__ == "__main__":  # not when imported (e.g. by a worker process re-running main)
    main()
