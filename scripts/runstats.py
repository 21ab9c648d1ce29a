#!/usr/bin/env python3
"""Numbers and figures from run folders (runs/<run>/<peer>/{rounds,heartbeats}.jsonl), for the
experiment scripts. Standard library only.

  runstats.py summary RUN_DIR                 final val loss, steps, wall time, bytes per step
  runstats.py curve RUN_DIR                   validation events: seconds since start, step, val loss
  runstats.py reach RUN_DIR TARGET            first time the mean validation loss is <= TARGET
  runstats.py svg [--time] OUT.svg TITLE LABEL=RUN_DIR ...   training loss (mean of peers,
                                              smoothed) and validation loss per step (or per second
                                              since the start, with --time), one colour per run
"""
import json
import os
import sys


def lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a half-written last line
    except FileNotFoundError:
        pass
    return out


def peers(run):
    return sorted(d for d in os.listdir(run) if os.path.isfile(os.path.join(run, d, "rounds.jsonl")))


def start_ms(run):
    """The run's first instant: the earliest line any peer logged."""
    firsts = []
    for p in peers(run):
        for name in ("heartbeats.jsonl", "rounds.jsonl"):
            ls = lines(os.path.join(run, p, name))
            if ls:
                firsts.append(min(x["time_ms"] for x in ls[:50]))
    return min(firsts)


def validation(run):
    """[(seconds since start, step, mean val loss over peers that measured it)] by step."""
    t0 = start_ms(run)
    by_step = {}
    for p in peers(run):
        for e in lines(os.path.join(run, p, "heartbeats.jsonl")):
            if e.get("event") == "validation":
                by_step.setdefault(e["step"], []).append((e["time_ms"], e["val_loss"]))
    out = []
    for step in sorted(by_step):
        vals = by_step[step]
        out.append(((max(t for t, _ in vals) - t0) / 1000, step, sum(v for _, v in vals) / len(vals)))
    return out


def summary(run):
    ps = peers(run)
    sums = [json.load(open(os.path.join(run, p, "summary.json"))) for p in ps if os.path.exists(os.path.join(run, p, "summary.json"))]
    r0 = lines(os.path.join(run, ps[0], "rounds.jsonl"))
    live = [r for r in r0 if r.get("phase") == "training"]
    t0 = start_ms(run)
    end = max(r["time_ms"] for r in r0)
    vals = [s["val_loss"] for s in sums if s.get("val_loss") is not None]
    return {
        "peers": len(ps),
        "steps": max(r["step"] for r in r0) + 1,
        "val_loss": sum(vals) / len(vals) if vals else None,
        "wall_s": (end - t0) / 1000,
        "step_s_median": sorted(b["time_ms"] - a["time_ms"] for a, b in zip(live, live[1:]))[len(live) // 2] / 1000 if len(live) > 2 else None,
        "bytes_out_per_step": sum(r["bytes_out"] for r in live) / max(1, len(live)),
        "bytes_in_per_step": sum(r["bytes_in"] for r in live) / max(1, len(live)),
        "bytes_dense": r0[-1]["bytes_dense"],
        "bytes_reference": r0[-1]["bytes_reference"],
    }


def reach(run, target):
    for t, step, v in validation(run):
        if v <= target:
            return t, step, v
    return None


def svg(out, title, runs, by_time=False):
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    series = []
    for label, run in runs:
        per_step, when = {}, {}
        t0 = start_ms(run)
        for p in peers(run):
            for r in lines(os.path.join(run, p, "rounds.jsonl")):
                if r.get("loss") is not None:
                    per_step.setdefault(r["step"], []).append(r["loss"])
                    when[r["step"]] = max(when.get(r["step"], 0), (r["time_ms"] - t0) / 1000)
        steps = sorted(per_step)
        mean = [sum(per_step[s]) / len(per_step[s]) for s in steps]
        k = max(1, len(steps) // 60)  # moving average over ~1/60 of the run
        smooth = [sum(mean[max(0, i - k):i + 1]) / len(mean[max(0, i - k):i + 1]) for i in range(len(mean))]
        xs_run = [when[s] for s in steps] if by_time else steps
        val = [((t if by_time else s), v) for t, s, v in validation(run)]
        series.append((label, xs_run, smooth, val))
    xs = [s for _, st, _, _ in series for s in st]
    ys = [v for _, _, sm, _ in series for v in sm] + [v for *_, val in series for _, v in val]
    if not xs:
        sys.exit("svg: no rounds in these runs")
    x0, x1, y0, y1 = 0, max(xs), min(ys), min(max(ys), min(ys) + 2.5)
    W, H, L, B = 720, 360, 60, 40

    def px(x):
        return L + (x - x0) / max(1e-9, x1 - x0) * (W - L - 20)

    def py(y):
        return H - B - (min(y, y1) - y0) / max(1e-9, y1 - y0) * (H - B - 30)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{W}" height="{H}" fill="white"/><text x="{L}" y="16" font-size="13">{title}</text>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - 20}" y2="{H - B}" stroke="#444"/><line x1="{L}" y1="30" x2="{L}" y2="{H - B}" stroke="#444"/>']
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        parts.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.2f}</text><line x1="{L}" y1="{py(y):.1f}" x2="{W - 20}" y2="{py(y):.1f}" stroke="#eee"/>')
        x = x0 + (x1 - x0) * i / 5
        parts.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{int(x)}</text>')
    parts.append(f'<text x="{(L + W) / 2}" y="{H - 6}" text-anchor="middle">{"seconds since the start" if by_time else "step"}</text>'
                 f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">loss (nats/byte)</text>')
    for i, (label, steps, smooth, val) in enumerate(series):
        c = colours[i % len(colours)]
        pts = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in zip(steps, smooth))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.4" points="{pts}"/>')
        for s, v in val:
            parts.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="3" fill="white" stroke="{c}" stroke-width="1.5"/>')
        parts.append(f'<rect x="{W - 300}" y="{34 + 16 * i}" width="12" height="3" fill="{c}"/><text x="{W - 282}" y="{38 + 16 * i}">{label}</text>')
    parts.append(f'<text x="{W - 300}" y="{38 + 16 * len(series)}" fill="#555">line: training loss (mean of peers); o: validation</text></svg>')
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "summary" and len(args) == 1:
        print(json.dumps(summary(args[0]), sort_keys=True))
    elif cmd == "curve" and len(args) == 1:
        for t, s, v in validation(args[0]):
            print(f"{t:8.1f} s  step {s:5d}  val {v:.4f}")
    elif cmd == "reach" and len(args) == 2:
        r = reach(args[0], float(args[1]))
        print(json.dumps(None if r is None else {"seconds": r[0], "step": r[1], "val_loss": r[2]}))
    elif cmd == "svg" and len(args) >= 3:
        by_time = args[0] == "--time"
        args = args[1:] if by_time else args
        svg(args[0], args[1], [tuple(a.split("=", 1)) for a in args[2:]], by_time)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
