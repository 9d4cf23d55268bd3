"""A progress bar for :func:`daskloc.batch`, in Jupyter and in a terminal (tqdm)."""

from __future__ import annotations


class ProgressBar:
    """Progress of a batch job as a tqdm bar: a widget in Jupyter, text elsewhere.

    Pass it as ``daskloc.batch(..., progress=ProgressBar())`` (``progress=True`` does
    the same). It counts chunks (tasks) done out of all chunks, including those done
    by an earlier run that this one resumes, and shows the features found so far.

    Parameters
    ----------
    desc : str, default "locate"
        Label in front of the bar.
    **tqdm_kwargs
        Passed to ``tqdm.auto.tqdm`` (e.g. ``file=sys.stdout``, ``disable=True``,
        ``leave=False``).

    Notes
    -----
    ``tqdm.auto`` draws an ipywidgets bar in Jupyter (install ``ipywidgets``, part of
    daskloc's ``notebook`` extra) and a text bar on the terminal's stderr otherwise.
    The bar closes itself when the last chunk is done; call :meth:`close` if a job
    stops early (an error, Ctrl-C).

    Examples
    --------
    >>> import daskloc
    >>> bar = daskloc.ProgressBar()  # doctest: +SKIP
    >>> daskloc.batch(video, 11, store="f.parquet", progress=bar)  # doctest: +SKIP
    """

    def __init__(self, desc="locate", **tqdm_kwargs):
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None
        self.done = self.total = self.features = 0

    def __call__(self, done, total, n_features):
        """Update the bar: ``done`` of ``total`` chunks, ``n_features`` found so far."""
        from tqdm.auto import tqdm

        self.done, self.total, self.features = int(done), int(total), int(n_features)
        if self.bar is None:
            options = {"desc": self.desc, "unit": "chunk", **self.tqdm_kwargs}
            self.bar = tqdm(total=self.total, initial=self.done, **options)
        else:
            self.bar.update(self.done - self.bar.n)
        self.bar.set_postfix_str(f"{self.features:,} features", refresh=True)
        if self.done >= self.total:
            self.close()

    def close(self):
        """Close the bar (it stays on screen with its last figures)."""
        if self.bar is not None:
            self.bar.close()

    def __repr__(self):
        return f"ProgressBar({self.done}/{self.total} chunks, {self.features:,} features)"
