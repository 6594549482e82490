#!/usr/bin/env python3
"""Turn peers.py JSON results into the "ANN vs peers" tables of bench/RESULTS.md.

    python3 bench/peers_table.py /tmp/peers-digits.json /tmp/peers-fashion.json ...

For each JSON file (one dataset, one peers.py run) it prints Markdown:

* one row per engine: single-thread QPS at recall@10 = 0.90 / 0.95 / 0.99, interpolated
  linearly on the engine's (recall, QPS) curve between consecutive ef points ("not reached"
  when no ef gets there; "≥ q" when the smallest ef is already above the target, so only a
  lower bound of the QPS at that recall is known), batch QPS at 0.95 on the threaded build,
  build seconds with 1 and 2 threads, bytes per vector (index_bytes / n) and the best recall;
* the ratios of the engine (--engine, default vela) to every other peer, all from this run.
  Where a target recall lies below the first point of either curve (easy sets: ef=10 already
  gives more), a ratio of the two first points would compare different recalls, so the ratio
  is taken instead at the lowest recall both curves reach (the larger of their first points),
  interpolated on both, and the table says at which recall;
* the targets of issue 3 item 8 against the baseline (--baseline, default hnswlib): QPS at
  0.95 >= 1.0x (aim 1.3x), build speed >= 1.0x, bytes per vector <= 1.1 * (4*dim + 8*m) + 8
  (the row id).

QPS figures are the JSON's own per-ef medians of the timed repeats.  When several files hold
runs of the same dataset, a last table lists the engine/baseline ratios of each run (each
ratio from within one run) and their median across runs.  Python 3 stdlib only.
"""
import argparse
import json
import math
import sys

TARGETS = (0.90, 0.95, 0.99)


def interp(points, target):
    """QPS at `target` recall on a curve of (ef, recall, qps) points sorted by ef.
    -> (qps or None, kind) with kind "interp", "lower-bound" or "not reached"."""
    pts = [(ef, r, q) for ef, r, q in points if r is not None and q is not None]
    for i, (_, r, q) in enumerate(pts):
        if r >= target:
            if i == 0:
                return q, "lower-bound"
            _, r0, q0 = pts[i - 1]
            if r == r0:
                return q, "interp"
            return q0 + (target - r0) * (q - q0) / (r - r0), "interp"
    return None, "not reached"


def fmt_qps(v):
    qps, kind = v
    if qps is None:
        return "not reached"
    s = f"{qps:,.0f}"
    return f"≥ {s}" if kind == "lower-bound" else s


def first_recall(points):
    return next((r for _, r, q in points if r is not None and q is not None), None)


def qps_ratio(me_pts, peer_pts, target):
    """(ratio, recall it is taken at) of the engine's QPS to the peer's at `target`, or at the
    lowest recall both curves reach when `target` is below either curve's first point."""
    if not me_pts or not peer_pts:
        return None, None
    at = target
    if any(first_recall(p) is not None and first_recall(p) > target for p in (me_pts, peer_pts)):
        at = max(first_recall(me_pts), first_recall(peer_pts))
    a, b = interp(me_pts, at), interp(peer_pts, at)
    if a[0] is None or b[0] is None or b[0] == 0:
        return None, at
    return a[0] / b[0], at


def fmt_qratio(r):
    x, at = r
    if x is None:
        return "–"
    return f"{x:.2f}x" + (f" (at {at:.3f})" if at not in TARGETS else "")


def fmt_ratio(a, b, invert=False):
    if a is None or b is None or a[0] is None or b[0] is None or b[0] == 0 or a[0] == 0:
        return "–"
    x = b[0] / a[0] if invert else a[0] / b[0]
    approx = "~" if "lower-bound" in (a[1], b[1]) else ""
    return f"{approx}{x:.2f}x"


def engine_summary(entry, n):
    """Curves, build times and sizes of one peer entry of the JSON."""
    runs = [r for r in entry.get("runs", []) if r.get("ok")]
    single = next((r for r in runs if r.get("single")), None)
    batch = next((r for r in runs if r.get("batch")), None)
    out = {"version": entry.get("version") or "?", "build": {}, "bytes": None, "mem_delta": None,
           "max_recall": None, "q1": {}, "qb": {}}
    for r in runs:
        out["build"][r.get("build_threads")] = r.get("build_s")
    ref = single or batch
    if ref:
        if isinstance(ref.get("index_bytes"), (int, float)):
            out["bytes"] = ref["index_bytes"] / n
        if isinstance(ref.get("mem_delta_bytes"), (int, float)):
            out["mem_delta"] = ref["mem_delta_bytes"] / n
    if single:
        pts = sorted(((row.get("ef") or 0, row.get("recall"), row.get("qps_1t"))
                      for row in single.get("search", [])), key=lambda p: p[0])
        out["max_recall"] = max((p[1] for p in pts if p[1] is not None), default=None)
        out["q1"] = {t: interp(pts, t) for t in TARGETS}
        out["curve"] = pts
    if batch:
        pts = sorted(((row.get("ef") or 0, row.get("recall"), row.get("qps_batch"))
                      for row in batch.get("search", [])), key=lambda p: p[0])
        out["qb"] = {t: interp(pts, t) for t in TARGETS}
        out["bcurve"] = pts
    return out


def _num(x, fmt):
    return format(x, fmt) if isinstance(x, (int, float)) and not math.isnan(x) else "–"


def run_ratios(res, engine, baseline):
    """Engine/baseline ratios inside one run: QPS 1t at 0.95 (or the common floor), build
    speed with 1 and 2 threads; None where missing."""
    n = res["dataset"]["n"]
    peers = {k: engine_summary(e, n) for k, e in res["peers"].items() if e.get("available")}
    if engine not in peers or baseline not in peers:
        return None
    me, b = peers[engine], peers[baseline]
    q, at = qps_ratio(me.get("curve"), b.get("curve"), 0.95)
    qb, atb = qps_ratio(me.get("bcurve"), b.get("bcurve"), 0.95)

    def speed(t):
        x, y = b["build"].get(t), me["build"].get(t)
        return x / y if x and y else None
    la = res["machine"].get("loadavg_start") or [None]
    return {"q": q, "at": at, "qb": qb, "atb": atb, "b1": speed(1), "b2": speed(2), "load": la[0],
            "started": res.get("started", "?")}


def summary(paths, engine, baseline, out):
    groups = {}
    for path in paths:
        with open(path) as f:
            res = json.load(f)
        groups.setdefault(res["dataset"]["name"], []).append((path, res))
    for name, runs in groups.items():
        if len(runs) < 2:
            continue
        rows = [(p, run_ratios(r, engine, baseline)) for p, r in runs]
        rows = [(p, r) for p, r in rows if r]
        if not rows:
            continue
        w = out.write
        w(f"#### {name}: {engine} / {baseline}, run by run\n\n")
        w("| run | load avg at start | QPS 1t @0.95 | batch QPS @0.95 | build 1 thr | build 2 thr |\n")
        w("|---|---:|---:|---:|---:|---:|\n")
        for p, r in rows:
            w(f"| {r['started']} | {_num(r['load'], '.2f')} | {fmt_qratio((r['q'], r['at']))} | "
              f"{fmt_qratio((r['qb'], r['atb']))} | {fmt_qratio((r['b1'], 0.95))} | {fmt_qratio((r['b2'], 0.95))} |\n")

        def med(key):
            xs = sorted(r[key] for _, r in rows if r[key] is not None)
            if not xs:
                return None
            mid = len(xs) // 2
            return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2
        def x(v):
            return "–" if v is None else f"{v:.2f}x"
        w(f"| **median of {len(rows)} runs** | | {x(med('q'))} | {x(med('qb'))} | "
          f"{x(med('b1'))} | {x(med('b2'))} |\n\n")


def report(path, engine, baseline, out):
    with open(path) as f:
        res = json.load(f)
    ds, params, mach = res["dataset"], res["params"], res["machine"]
    n, dim, m = ds["n"], ds["dim"], params["M"]
    peers = {name: engine_summary(e, n) for name, e in res["peers"].items() if e.get("available")}
    skipped = {name: e.get("reason") for name, e in res["peers"].items() if not e.get("available")}
    la0, la1 = mach.get("loadavg_start"), mach.get("loadavg_end")
    w = out.write
    w(f"### {ds['name']} ({n:,} x {dim}, {ds['n_queries']:,} queries, {ds['metric']})\n\n")
    w(f"Run {res.get('started', '?')} – {res.get('finished', '?')}; {mach.get('cores')} cores, "
      f"{mach.get('cpu')}; load average at start {_num(la0[0] if la0 else None, '.2f')}, "
      f"at end {_num(la1[0] if la1 else None, '.2f')}; M={m}, ef_construction="
      f"{params['ef_construction']}, ef {','.join(map(str, params['ef_search']))}; QPS = median of "
      f"{params['repeats']} runs; batch on {params.get('batch_threads', 2)} threads.\n\n")
    w("| engine | version | QPS 1t @0.90 | QPS 1t @0.95 | QPS 1t @0.99 | QPS batch @0.95 | "
      "build 1 thr (s) | build 2 thr (s) | bytes/vector | max recall@10 |\n")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    order = [engine] + [p for p in peers if p != engine] if engine in peers else list(peers)
    for name in order:
        s = peers[name]
        w(f"| {'**' + name + '**' if name == engine else name} | {s['version']} | "
          f"{fmt_qps(s['q1'].get(0.90, (None, '')))} | {fmt_qps(s['q1'].get(0.95, (None, '')))} | "
          f"{fmt_qps(s['q1'].get(0.99, (None, '')))} | {fmt_qps(s['qb'].get(0.95, (None, '')))} | "
          f"{_num(s['build'].get(1), '.2f')} | {_num(s['build'].get(2), '.2f')} | "
          f"{_num(s['bytes'], '.0f')} | {_num(s['max_recall'], '.4f')} |\n")
    if skipped:
        w("\nNot in this run: " + "; ".join(f"{k} ({(v or '')[:80]})" for k, v in skipped.items()) + "\n")
    if engine not in peers:
        w(f"\n({engine} is not in this run.)\n\n")
        return
    me = peers[engine]
    w(f"\n{engine} / peer (QPS: >1 means {engine} is faster; build: peer seconds / {engine} seconds, "
      f">1 means {engine} builds faster; bytes: {engine} / peer, <1 means {engine} is smaller)\n\n")
    w("| vs | QPS @0.90 | QPS @0.95 | QPS @0.99 | batch QPS @0.95 | build 1 thr | build 2 thr | bytes/vector |\n")
    w("|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for name in order:
        if name == engine:
            continue
        p = peers[name]
        b1 = (me["build"].get(1), ""), (p["build"].get(1), "")
        b2 = (me["build"].get(2), ""), (p["build"].get(2), "")
        c1, cp = me.get("curve"), p.get("curve")
        w(f"| {name} | {fmt_qratio(qps_ratio(c1, cp, 0.90))} | "
          f"{fmt_qratio(qps_ratio(c1, cp, 0.95))} | "
          f"{fmt_qratio(qps_ratio(c1, cp, 0.99))} | "
          f"{fmt_qratio(qps_ratio(me.get('bcurve'), p.get('bcurve'), 0.95))} | "
          f"{fmt_ratio(*b1, invert=True)} | {fmt_ratio(*b2, invert=True)} | "
          f"{fmt_ratio((me['bytes'], ''), (p['bytes'], ''))} |\n")
    if baseline in peers:
        base = peers[baseline]
        bound = 1.1 * (4 * dim + 8 * m) + 8

        def ratio(a, b):
            return a / b if a and b else None
        q, q_at = qps_ratio(me.get("curve"), base.get("curve"), 0.95)
        b1 = ratio(base["build"].get(1), me["build"].get(1))
        b2 = ratio(base["build"].get(2), me["build"].get(2))

        def verdict(x, goal):
            return "–" if x is None else ("met" if x >= goal else "**missed**")
        w(f"\nTargets (issue 3 item 8), {engine} against {baseline} in this run:\n\n")
        w("| target | value | met? |\n|---|---:|---|\n")
        qs = fmt_qratio((q, q_at))
        w(f"| single-thread QPS at recall 0.95 ≥ 1.0x {baseline} (aim 1.3x) | {qs} | "
          f"{verdict(q, 1.0)}{'' if q is None or q < 1.0 else (', aim met' if q >= 1.3 else ', aim (1.3x) not met')} |\n")
        w(f"| build speed, 1 thread ≥ 1.0x {baseline} | {_num(b1, '.2f')}x | {verdict(b1, 1.0)} |\n")
        w(f"| build speed, 2 threads ≥ 1.0x {baseline} | {_num(b2, '.2f')}x | {verdict(b2, 1.0)} |\n")
        mv = me["bytes"]
        w(f"| bytes/vector ≤ 1.1·(4·{dim} + 8·{m}) + 8 = {bound:.0f} | {_num(mv, '.0f')} | "
          f"{'–' if mv is None else ('met' if mv <= bound else '**missed**')} |\n")
    w("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="peers.py --out files (one dataset each)")
    ap.add_argument("--engine", default="vela", help="the engine the ratios are about (default vela)")
    ap.add_argument("--baseline", default="hnswlib", help="the peer the targets are against")
    args = ap.parse_args(argv)
    for path in args.json:
        report(path, args.engine, args.baseline, sys.stdout)
    summary(args.json, args.engine, args.baseline, sys.stdout)


if __name__ == "__main__":
    main()
