"""python -m daskloc: the command line."""

from daskloc.cli import main

if __name__ == "__main__":  # not when imported (e.g. by a worker process re-running main)
    main()
