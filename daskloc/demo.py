"""``daskloc demo``: the whole job on a synthetic video whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

#: Locate parameters for the demo video (diameter 9 spots, defaults of make_video).
DEMO_PARAMS = dict(diameter=9, minmass=300)


def score(features, truth, max_distance=2.0, separation=None):
    """Compare located features with the true positions, frame by frame.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``frame, y, x`` (pixels), e.g. from :func:`daskloc.read_features`.
    truth : pandas.DataFrame
        Columns ``frame, y, x`` of the true particle positions (pixels).
    max_distance : float
        A feature within this many pixels of a true particle (nearest pairing,
        each used once) counts as finding it.
    separation : float, optional
        True particles closer than this to another one cannot be told apart by
        Crocker-Grier location (it keeps the brighter of two features closer than
        ``separation``); they are counted in ``n_overlapping`` and left out of
        ``recall`` and the errors. Default: count every particle.

    Returns
    -------
    dict
        ``n_true``, ``n_overlapping``, ``n_found`` (located features),
        ``n_matched`` (resolvable particles found), ``recall`` (matched /
        resolvable), ``false_positives`` (features near no true particle),
        ``rms_error`` and ``max_error`` of the matched positions, pixels.
    """
    errors = []
    n_matched = n_overlapping = false_positives = 0
    by_frame = dict(tuple(features.groupby("frame")))
    for frame, true in truth.groupby("frame"):
        true_yx = true[["y", "x"]].to_numpy()
        resolvable = np.ones(len(true_yx), dtype=bool)
        if separation and len(true_yx) > 1:
            pairs = cKDTree(true_yx).query_pairs(separation, output_type="ndarray")
            resolvable[pairs.ravel()] = False
        n_overlapping += int((~resolvable).sum())
        found = by_frame.get(frame)
        if found is None or len(found) == 0:
            continue
        found_yx = found[["y", "x"]].to_numpy()
        dist, idx = cKDTree(found_yx).query(true_yx)
        near_any = np.zeros(len(found_yx), dtype=bool)
        near_any[idx[dist <= max_distance]] = True
        false_positives += int((~near_any).sum())
        ok = (dist <= max_distance) & resolvable
        # Nearest pairing, each feature used once.
        _, first = np.unique(idx[ok], return_index=True)
        d = dist[ok][first]
        errors.append(d)
        n_matched += len(d)
    errors = np.concatenate(errors) if errors else np.empty(0)
    n_resolvable = len(truth) - n_overlapping
    return {
        "n_true": len(truth),
        "n_overlapping": n_overlapping,
        "n_found": len(features),
        "n_matched": n_matched,
        "recall": n_matched / n_resolvable if n_resolvable else float("nan"),
        "false_positives": false_positives,
        "rms_error": float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan"),
        "max_error": float(errors.max()) if errors.size else float("nan"),
    }


def run_demo(out="daskloc-demo", *, n_frames=200, n_particles=40, workers=None, quiet=False):
    """Generate a synthetic video, locate it on a local Dask cluster, report accuracy.

    Writes ``OUT/synthetic.tif`` (the video, a multi-page TIFF), ``OUT/truth.csv``
    (true positions) and ``OUT/features.parquet`` (the located features, replaced on
    each run), and prints how well the features match the truth.

    Parameters
    ----------
    out : str or os.PathLike
        Folder for the files; created if missing.
    n_frames : int
        Frames of 256 x 256 pixels to generate.
    n_particles : int
        Diffusing particles (diameter 9 pixels) in the video.
    workers : int, optional
        Local worker processes (default one per core).
    quiet : bool
        Print nothing (the report is still returned).

    Returns
    -------
    dict
        :func:`score` of the located features against the truth, plus ``store``,
        ``video`` and ``truth`` paths and ``seconds``.

    Raises
    ------
    ValueError
        ``n_frames`` or ``n_particles`` not positive, or the particles do not fit.
    OSError
        ``out`` cannot be written.
    """
    from daskloc._runner import run_batch
    from daskloc.stores import read_features
    from daskloc.synthetic import make_video, write_video

    if n_frames < 1 or n_particles < 1:
        raise ValueError("the demo needs at least one frame and one particle")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    video, truth = make_video(n_frames=n_frames, n_particles=n_particles,
                              diameter=DEMO_PARAMS["diameter"], seed=0)
    video_path = write_video(out / "synthetic.tif", video)
    truth_path = out / "truth.csv"
    truth.to_csv(truth_path, index=False)
    store = out / "features.parquet"
    info, seconds = run_batch(
        str(video_path), out=str(store), diameter=DEMO_PARAMS["diameter"], chunk_frames=25,
        channel=None, frames=None, workers=workers, overwrite=True,
        params={k: v for k, v in DEMO_PARAMS.items() if k != "diameter"}, quiet=quiet,
    )
    features = read_features(store)
    report = score(features, truth, separation=DEMO_PARAMS["diameter"] + 1)
    report.update(store=str(store), video=str(video_path), truth=str(truth_path), seconds=seconds)
    if not quiet:
        print(
            f"synthetic video: {n_frames} frames of 256x256, {n_particles} particles "
            f"(diameter {DEMO_PARAMS['diameter']} px) -> {video_path}\n"
            f"located {report['n_found']} features in {seconds:.1f} s on the local cluster\n"
            f"accuracy vs known positions: found {report['recall']:.2%} of the particles "
            f"({report['n_matched']} of {report['n_true'] - report['n_overlapping']}; another "
            f"{report['n_overlapping']} were closer than {DEMO_PARAMS['diameter'] + 1} px to a "
            f"neighbour, too close to resolve), {report['false_positives']} false positives, "
            f"position error rms {report['rms_error']:.3f} px, max {report['max_error']:.3f} px\n"
            f"features written to {store} (read them back: daskloc.read_features({str(store)!r}))\n"
            f"truth written to {truth_path}"
        )
    return report
