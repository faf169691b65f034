#!/usr/bin/env python3
"""Timegate against chronyd over many runs of xleave-delay.sh (issue 14).

Usage: compare.py [-bins] DIR...   (each an OUT of scripts/xleave-delay.sh
                                    run with CAPTURE=1, or a directory
                                    above several)

For every interleaved run found (its legs.txt), the difference timegate −
chronyd of the medians legs.py reports: the delay ("Peer del."), the
request's leg (T1→T2, the client's own send), the reply's leg (T3→T4,
the server's send) and the residence (T2→T3), with the idle before each
server's requests (p50, ms). Then, per directory given, the mean of each
difference over its runs ± its standard error: only differences within a
run are compared, since absolute figures drift between runs by more than
the differences being measured.

The request's leg is longer after a longer idle (the client's CPU halted
longer), and a chronyd client's polls keep one phase for a whole run, so
one server may be asked after the longer idle in most runs, and the mean
follows that, by hundreds of ns.

"matched" compares the two servers at equal idle, exchange by exchange
(the exchanges.txt legs.py -x writes beside legs.txt): the runs' paired
samples are put in bins of idle (4 ms), and in each bin where both
servers have at least MIN_BIN samples the difference of their medians is
taken; the estimate is the mean of those differences, each bin weighted
by the smaller of its two counts. Its ± is the standard deviation of the
same estimate over 200 resamplings of the runs (with replacement). With
-bins, each bin's counts and medians are printed too.
"""
import glob
import os
import random
import re
import statistics
import sys

KEYS = ("delay", "T1_T2", "T3_T4", "resid")
MATCHED = ("delay", "T1_T2", "T3_T4")
BIN_NS = 4_000_000
MIN_BIN = 20


def medians(text, addr):
    """The p50 column of addr's section of a legs.txt."""
    sec = text.split(addr + ":", 1)[1].split("\n127.", 1)[0]
    return {m.group(1): int(m.group(3)) for m in re.finditer(r"\n\s+(\w+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)", sec)}


def read_exchanges(run, tg_addr):
    """A run's paired samples as (is_timegate, idle bin, {key: ns})."""
    out = []
    for line in open(os.path.join(run, "exchanges.txt")):
        addr, idle, req, back, delay = line.split()
        out.append((addr == tg_addr, int(idle) // BIN_NS, {"T1_T2": int(req), "T3_T4": int(back), "delay": int(delay)}))
    return out


def matched(runs):
    """The idle-matched differences timegate − chronyd (see the module
    comment) over runs, each a list from read_exchanges; None where no
    bin has enough samples of both."""
    bins = {}
    for run in runs:
        for is_tg, b, v in run:
            bins.setdefault(b, ([], []))[0 if is_tg else 1].append(v)
    est = {}
    for k in MATCHED:
        num = den = 0
        for tg, ch in bins.values():
            if len(tg) >= MIN_BIN and len(ch) >= MIN_BIN:
                w = min(len(tg), len(ch))
                num += w * (statistics.median(v[k] for v in tg) - statistics.median(v[k] for v in ch))
                den += w
        est[k] = num / den if den else None
    return est


def print_bins(runs):
    bins = {}
    for run in runs:
        for is_tg, b, v in run:
            bins.setdefault(b, ([], []))[0 if is_tg else 1].append(v)
    print(f"{'idle ms':>9s} | {'timegate n':>10s} {'T1_T2':>6s} {'T3_T4':>6s} {'delay':>6s} | {'chronyd n':>10s} {'T1_T2':>6s} {'T3_T4':>6s} {'delay':>6s}")
    for b in sorted(bins):
        cells = []
        for side in bins[b]:
            med = [statistics.median(v[k] for v in side) if side else float("nan") for k in ("T1_T2", "T3_T4", "delay")]
            cells.append(f"{len(side):10d} {med[0]:6.0f} {med[1]:6.0f} {med[2]:6.0f}")
        lo = b * BIN_NS // 1_000_000
        print(f"{lo:4d}-{lo + BIN_NS // 1_000_000:<4d} | " + " | ".join(cells))


def report_matched(top, runs, bins):
    if bins:
        print_bins(runs)
    est = matched(runs)
    if est["delay"] is None:
        print(f"{top}: no idle bin with {MIN_BIN} samples of each server to match")
        return
    rng = random.Random(1)
    boot = {k: [] for k in MATCHED}
    for _ in range(200):
        e = matched([rng.choice(runs) for _ in runs])
        for k in MATCHED:
            if e[k] is not None:
                boot[k].append(e[k])
    out = [f"{k} {est[k]:+.0f} ± {statistics.stdev(boot[k]):.0f}" for k in MATCHED if len(boot[k]) > 1]
    print(f"{top}: matched by idle, {len(runs)} runs: " + ", ".join(out))


def main():
    args = sys.argv[1:]
    bins = "-bins" in args
    args = [a for a in args if a != "-bins"]
    print(f"{'run':40s} {'tg addr':10s} {'idle tg/ch ms':>14s}" + "".join(f" {k:>8s}" for k in KEYS))
    for top in args:
        files = sorted(glob.glob(os.path.join(top, "**", "legs.txt"), recursive=True))
        diffs = {k: [] for k in KEYS}
        runs = []  # each run's paired samples, when legs.py wrote them
        for f in files:
            text = open(f).read()
            m = re.match(r"timegate (\S+), chronyd (\S+)", text)
            if not m:
                continue
            try:
                tg, ch = medians(text, m.group(1)), medians(text, m.group(2))
            except IndexError:
                continue
            if not all(k in tg and k in ch for k in KEYS):
                continue
            row = {k: tg[k] - ch[k] for k in KEYS}
            if os.path.exists(os.path.join(os.path.dirname(f), "exchanges.txt")):
                runs.append(read_exchanges(os.path.dirname(f), m.group(1)))
            for k in KEYS:
                diffs[k].append(row[k])
            idle = f"{tg['idle'] / 1e6:.1f}/{ch['idle'] / 1e6:.1f}"
            print(f"{os.path.relpath(os.path.dirname(f), top):40s} {m.group(1).split(':')[0]:10s} {idle:>14s}"
                  + "".join(f" {row[k]:+8d}" for k in KEYS))
        n = len(diffs["delay"])
        if n == 0:
            print(f"{top}: no interleaved run with legs")
            continue
        out = []
        for k in KEYS:
            v = diffs[k]
            se = statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else float("nan")
            out.append(f"{k} {statistics.mean(v):+.0f} ± {se:.0f}")
        print(f"{top}: {n} runs, timegate − chronyd, ns: " + ", ".join(out))
        if runs:
            report_matched(top, runs, bins)


if __name__ == "__main__":
    main()
