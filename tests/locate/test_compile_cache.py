"""The kernel compiles once per machine and dtype: later processes (Dask's worker
processes, the next CLI run) load numba's on-disk cache instead of compiling again
(23-49 s a dtype on a cold machine)."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from daskloc.locate import locate_frame

DTYPES = ("uint8", "uint16", "float64")  # a movie, a camera, --channel grey


def frame(dtype):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    spots = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
                for cy, cx in rng.uniform(12, 52, size=(6, 2)))
    scaled = 0.8 * spots / spots.max() + 0.05 * rng.random((64, 64))
    if dtype == "float64":
        return scaled
    return (scaled * np.iinfo(dtype).max).astype(dtype)


@pytest.mark.slow
def test_another_process_loads_the_compiled_kernel_from_the_cache(tmp_path):
    for dtype in DTYPES:  # compiled here (and written to the cache) if not yet
        assert len(locate_frame(frame(dtype), 11)) > 0
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parents[2])!r})
        from tests.locate.test_compile_cache import DTYPES, frame
        from daskloc.locate import locate_frame, maxima, preprocess, refine, uncertainty
        for dtype in DTYPES:
            assert len(locate_frame(frame(dtype), 11)) > 0
        for module in (maxima, preprocess, refine, uncertainty):
            for name in dir(module):
                f = getattr(module, name)
                if hasattr(f, "py_func") and hasattr(f, "stats"):
                    for sig in f.stats.cache_hits:
                        print("loaded", name, sig[0])
                    for sig in f.stats.cache_misses:
                        print("compiled", name, sig)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line for line in lines if line.startswith("compiled")] == []  # nothing again
    for dtype in DTYPES:  # every dtype's band pass (which takes the frame) was loaded
        # (_bandpass_unsigned for uint8 and uint16 frames, _bandpass for the others)
        assert re.search(rf"^loaded _bandpass(_unsigned)? array\({dtype}, 2d", result.stdout,
                         re.MULTILINE), result.stdout
