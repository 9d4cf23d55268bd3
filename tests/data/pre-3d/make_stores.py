"""Write the stores of this folder: 2-D jobs of daskloc 51477cc (before the metadata
recorded dims and columns), two of their three chunks done.

Run from a checkout of 51477cc: ``PYTHONPATH=. python make_stores.py OUTDIR``.
"""

import sys
from pathlib import Path

import dask

from daskloc.pipeline import batch
from tests.conftest import DIAMETER, PARAMS, CountingArray, as_video, make_spots


def fail_on(first):
    if first == 8:
        raise RuntimeError("stopped on purpose")


def main(out):
    arr = make_spots(n_frames=12, shape=(64, 64), n_particles=4, seed=7)
    for name in ["features.parquet", "features.zarr", "features.h5", "features.db"]:
        url = f"sqlite:///{out / name}" if name.endswith(".db") else str(out / name)
        with dask.config.set(scheduler="synchronous"):
            try:
                batch(as_video(CountingArray(arr, on_read=fail_on), chunks=4), DIAMETER,
                      store=url, do_not_return=True, **PARAMS)
            except RuntimeError:
                pass
        print(name, "written")


# Only when run: `pytest --doctest-modules tests` imports every module, and this one,
# run on import, wrote its stores into a folder named after pytest's first argument
# ("-q/", committed by mistake once).
if __name__ == "__main__":
    main(Path(sys.argv[1]))
