"""Run every daskloc benchmark, print each figure with its ratio and bar, record RESULTS.md.

Each benchmark runs in its own fresh interpreter, one after another (never two at
once: they would share the cores), and reports one JSON line that is summarised here:

=====================  =============================  =================================
figure                 benchmark                      bar (issue 5)
=====================  =============================  =================================
kernel time            bench_locate.py                <= 0.1x trackpy.locate(numba) (issue 17)
kernel accuracy        bench_locate.py                >= 99.9 % within 0.01 px
dense kernel time      bench_locate_dense.py          <= 0.1x, 2048 x 2048 uint16 (issue 17)
dense kernel accuracy  bench_locate_dense.py          >= 99.9 %, <= 0.1 % extra, 0.1 % char.
3-D kernel time        bench_locate_3d.py             <= 0.2x trackpy.locate(numba) (issue 17)
3-D kernel accuracy    bench_locate_3d.py             >= 99.9 % within 0.01 px, <= 0.1 % extra
end to end, wall       bench_end_to_end.py            <= 0.15x trackpy.batch(processes=2) (17)
in-job vs decode-only  bench_end_to_end.py            >= 0.5 (issue 17)
memory, 20k vs 5k      bench_memory.py                peak within 10 %
partial read, 1 %      bench_partial.py               <= 0.05 of reading all
chunk size sweep       bench_chunks.py                (where throughput peaks)
time to first result   bench_first_result.py          one frame <= 2.5 s (issue 12)
OME-TIFF memory        bench_ome_tiff.py              peak over 4 GiB within 10 % of 1 GiB
OME-TIFF read          bench_ome_tiff.py              >= 0.7x tifffile's frames/s
link speed             bench_link.py                  <= 0.6x trackpy.link (2 workers) (issue 15)
link memory, 10x       bench_link.py                  peak within 10 %
locate + link job      bench_link.py                  (reported: vs trackpy.batch + link)
follow latency         bench_follow.py                max <= chunk duration + 2 s (issue 16)
=====================  =============================  =================================

    benchmarks/run_all [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = {
    "locate": ["--frames", "60", "--repeat", "3"],
    "locate_dense": ["--frames", "3", "--repeat", "3"],
    "locate_3d": ["--stacks", "5", "--repeat", "3"],
    "end_to_end": ["--copies", "5"],
    "memory": ["--frames-long", "20000", "--frames-short", "5000"],
    "partial": ["--features", "10000000"],
    "chunks": ["--copies", "5"],
    "first_result": ["--repeat", "3"],
    "ome_tiff": ["--frames-small", "128", "--frames-large", "512", "--repeat", "2"],
    "link": ["--frames", "4000", "--particles", "250", "--scale", "10"],
    "follow": ["--frames", "400", "--fps", "20"],
}
QUICK = {
    "locate": ["--frames", "10", "--repeat", "1"],
    "locate_dense": ["--frames", "1", "--repeat", "1"],
    "locate_3d": ["--stacks", "1", "--repeat", "1"],
    "end_to_end": ["--copies", "1"],
    "memory": ["--frames-long", "800", "--frames-short", "200"],
    "partial": ["--features", "200000", "--frames", "1000"],
    "chunks": ["--copies", "1", "--sizes", "64,auto"],
    "first_result": ["--repeat", "1"],
    "ome_tiff": ["--frames-small", "8", "--frames-large", "32", "--repeat", "1"],
    "link": ["--frames", "300", "--particles", "100", "--scale", "3", "--copies", "1"],
    "follow": ["--frames", "64", "--fps", "20"],
}


def run(name, args):
    """Run ``bench_<name>.py --json ARGS``; return (figures, seconds)."""
    cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *args, "--json"]
    print(f"running: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}",
          flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"bench_{name}.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), seconds


def _vector_isa(flags):
    """The widest x86 vector extension among /proc/cpuinfo's flags (or the platform's)."""
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"),
                       ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return "no AVX" if flags else platform.machine()


def machine():
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first CPU's
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    try:
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "?"
    return {
        "host": platform.node(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        # The widest vector instructions decide the kernel ratios (numba compiles for the
        # host CPU; trackpy loses less without AVX-512), so runs are compared by them too.
        "vector_isa": _vector_isa(flags),
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "load_at_start": load,
    }


def versions():
    out = {}
    for mod in ("daskloc", "trackpy", "dask", "distributed", "numba", "numpy", "pyarrow", "zarr",
                "av"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing module is reported as such
            out[mod] = "?"
    return out


def rows_from(results):
    """(figure, value text, bar text, passed or None) for every figure."""
    rows = []
    k = results.get("locate")
    if k:
        rows.append(("kernel: daskloc/trackpy time per frame",
                     f"{k['ratio']:.3f} ({k['daskloc_ms']:.2f} vs {k['trackpy_ms']:.2f} ms)",
                     "<= 0.1", k["ratio"] <= 0.1))
        rows.append(("kernel: trackpy features within 0.01 px",
                     f"{100 * k['matched']:.3f} %", ">= 99.9 %", k["matched"] >= 0.999))
    kd = results.get("locate_dense")
    if kd:
        rows.append(("dense kernel: daskloc/trackpy time per 2048 x 2048 uint16 frame",
                     f"{kd['ratio']:.3f} ({kd['daskloc_ms']:.1f} vs {kd['trackpy_ms']:.1f} ms, "
                     f"{kd['features']:.0f} features)", "<= 0.1", kd["ratio"] <= 0.1))
        rows.append(("dense kernel: within 0.01 px, extra, characterisation",
                     f"{100 * kd['matched']:.3f} %, {100 * kd['extra']:.3f} %, "
                     f"{100 * kd['characterisation']:.2g} %", ">= 99.9 %, <= 0.1 %, <= 0.1 %",
                     kd["matched"] >= 0.999 and kd["extra"] <= 0.001
                     and kd["characterisation"] <= 0.001))
    k3 = results.get("locate_3d")
    if k3:
        shape = " x ".join(str(n) for n in k3["shape"])
        rows.append((f"3-D kernel: daskloc/trackpy time per {shape} stack",
                     f"{k3['ratio']:.3f} ({k3['daskloc_ms']:.1f} vs {k3['trackpy_ms']:.1f} ms, "
                     f"{k3['features_per_stack']:.0f} features)", "<= 0.2", k3["ratio"] <= 0.2))
        rows.append(("3-D kernel: trackpy features within 0.01 px, extra",
                     f"{100 * k3['matched']:.3f} %, {100 * k3['extra']:.3f} %",
                     ">= 99.9 %, <= 0.1 %", k3["matched"] >= 0.999 and k3["extra"] <= 0.001))
    e = results.get("end_to_end")
    if e:
        rows.append((f"end to end, {e['frames']} frames: daskloc/trackpy wall",
                     f"{e['wall_ratio']:.3f} ({e['daskloc_s']:.1f} vs {e['trackpy_s']:.1f} s)",
                     f"<= {e['wall_bar']}", e["wall_ratio"] <= e["wall_bar"]))
        rows.append(("in the job: locate/decode-only frames/s",
                     f"{e['decode_fraction']:.3f} ({e['locate_fps']:.0f} vs {e['decode_fps']:.0f})",
                     f">= {e['decode_bar']}", e["decode_fraction"] >= e["decode_bar"]))
    m = results.get("memory")
    if m:
        rows.append((f"memory: peak RSS {m['long']['frames']} vs {m['short']['frames']} frames",
                     f"{m['ratio_total']:.3f} ({m['long']['peak_total_mib']:.0f} vs "
                     f"{m['short']['peak_total_mib']:.0f} MiB)", "<= 1.10",
                     m["ratio_total"] <= 1.10))
        rows.append(("memory: peak RSS of one worker, same runs",
                     f"{m['ratio_worker']:.3f} ({m['long']['peak_worker_mib']:.0f} vs "
                     f"{m['short']['peak_worker_mib']:.0f} MiB)", "(reported)", None))
    p = results.get("partial")
    if p:
        for fmt, f in p["formats"].items():
            rows.append((f"partial read, 1 % of {p.get('features', 0):,} features, {fmt}",
                         f"{f['ratio']:.4f} ({1e3 * f['read_part_s']:.0f} vs "
                         f"{1e3 * f['read_all_s']:.0f} ms)", "<= 0.05", f["ratio"] <= 0.05))
    c = results.get("chunks")
    if c:
        rates = c["rates"]
        text = ", ".join(f"{k}: {v:.0f}" for k, v in rates.items())
        rows.append(("chunk sweep, frames/s by chunk size", text, f"peak at {c['best']}", None))
    f = results.get("first_result")
    if f:
        rows.append(("first result: `daskloc locate`, 1 frame, warm caches",
                     f"{f['one_frame_s']:.2f} s (imports alone {f['import_s']:.2f} s)",
                     "<= 2.5 s", f["one_frame_s"] <= 2.5))
        rows.append(("first result: `daskloc locate`, 60 frames, warm caches",
                     f"{f['sixty_frames_s']:.2f} s", "(reported)", None))
        rows.append(("first result: 1 frame, first run (numba cache empty)",
                     f"{f['first_run_one_frame_s']:.1f} s", "(reported)", None))
        rows.append(("first result: 1 frame `--channel grey` (float64) after it, then again",
                     f"{f['first_run_grey_one_frame_s']:.1f} s, then "
                     f"{f['second_run_grey_one_frame_s']:.1f} s", "(reported)", None))
    o = results.get("ome_tiff")
    if o:
        fs, fl = o["files"]["small"], o["files"]["large"]
        rows.append((f"OME-TIFF: batch peak RSS, {fl['size_mib'] / 1024:.2g} vs "
                     f"{fs['size_mib'] / 1024:.2g} GiB file (threads, whole process)",
                     f"{o['ratio_rss']:.3f} ({o['peak_large_mib']:.0f} vs "
                     f"{o['peak_small_mib']:.0f} MiB)", "<= 1.10", o["ratio_rss"] <= 1.10))
        rd = o["read"]
        rows.append((f"OME-TIFF: read frames/s, open_video ({rd['threads']} threads) vs "
                     "tifffile pages, warm cache",
                     f"{o['read_ratio']:.3f} ({max(rd['daskloc_fps']):.0f} vs "
                     f"{max(rd['tifffile_fps']):.0f})", ">= 0.7", o["read_ratio"] >= 0.7))
    li = results.get("link")
    if li:
        sp, me, wj = li["speed"], li["memory"], li["whole_job"]
        rows.append((f"link: daskloc.link (2 workers)/trackpy.link, {sp['features']:,} features",
                     f"{sp['ratio']:.3f} ({sp['daskloc_s']:.1f} vs {sp['trackpy_s']:.1f} s), "
                     f"equal: {sp['equal']}", "<= 0.6", sp["ratio"] <= 0.6 and sp["equal"]))
        rows.append((f"link: peak RSS {me['large']['features']:,} vs "
                     f"{me['small']['features']:,} features",
                     f"{me['ratio']:.3f} ({me['large']['peak_mib']:.0f} vs "
                     f"{me['small']['peak_mib']:.0f} MiB)", "<= 1.10", me["ratio"] <= 1.10))
        rows.append((f"link: locate + link, {wj['copies']} copies of the movie, vs "
                     "trackpy.batch + link",
                     f"{wj['ratio']:.3f} ({wj['daskloc_s']:.1f} vs {wj['trackpy_s']:.1f} s)",
                     "(reported)", None))
    fo = results.get("follow")
    if fo:
        rows.append((f"follow: frame written to its features stored, {fo['frames']} PNG "
                     f"frames at {fo['fps']:g}/s, chunks of {fo['chunk_frames']}",
                     f"median {fo['median_s']:.2f} s, max {fo['max_s']:.2f} s",
                     f"max <= {fo['bar_s']:.1f} s", fo["max_s"] <= fo["bar_s"]))
    return rows


def table(rows):
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    lines = [f"| {'figure':<{w}} | {'value':<{v}} | bar | result |",
             f"| {'-' * w} | {'-' * v} | --- | --- |"]
    for name, value, bar, passed in rows:
        mark = "-" if passed is None else ("pass" if passed else "**miss**")
        lines.append(f"| {name:<{w}} | {value:<{v}} | {bar} | {mark} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--only", default=None, help="comma-separated subset of: " + ",".join(FULL))
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(plan)
    started = datetime.datetime.now(datetime.UTC)
    info = machine()
    results, seconds = {}, {}
    for name in names:
        results[name], seconds[name] = run(name, plan[name])
        if name == "partial":
            results[name].setdefault("features", int(plan[name][1]))
    rows = rows_from(results)
    text = table(rows)
    print()
    print(text)
    if args.quick or args.no_write:
        return results
    command = "benchmarks/run_all" + (f" --only {args.only}" if args.only else "")
    report = [
        "# daskloc benchmark results",
        "",
        "Written by `benchmarks/run_all` (see `benchmarks/run_all.py` for what each figure",
        "means and which script measures it). Ratios are daskloc / reference measured in",
        "the same run on the same machine; timings vary with load, so compare runs made on",
        "a quiet machine.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}` (total {sum(seconds.values()) / 60:.1f} min)",
        f"- machine: {info['cpu']} ({info['vector_isa']}), {info['cores']} cores, "
        f"{info['memory_gib']} GiB, "
        f"{info['system']}, Python {info['python']}; load average at start {info['load_at_start']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
        text,
        "",
        "Per benchmark (seconds of wall time): "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".",
        "",
        "Raw figures (JSON):",
        "",
        "```json",
        json.dumps(results, indent=1, sort_keys=True, default=str),
        "```",
        "",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(report))
    print(f"\nwrote {HERE / 'RESULTS.md'}")
    return results


if __name__ == "__main__":
    main()
