#!/usr/bin/env python3
"""Split a chronyd client's interleaved delays into their two legs (issue 14).

Usage: legs.py CAPTURE MEASUREMENTS_LOG ADDR:PORT... [-x EXCHANGES]

CAPTURE is capture.py's output for the run, MEASUREMENTS_LOG the client's
chrony measurements.log (or the logs of several clients, concatenated). A
chrony 4.3 client hides its own T1 and T4 (its requests carry random
receive and transmit fields), but on loopback the capture has the
kernel's T2 of every request and T4 of every reply, and reply k carries
T3 of reply k-1. Per server, in ns (p10 / p50 / p90):
  T2err   the served receive timestamp minus the kernel's stamp of the
          request (0 for a server that serves the stamp itself)
  T3_T4   the return leg: the client's kernel stamp of reply k-1 − its T3
  resid   T3 − T2, the server's residence
  idle    how long lo carried nothing before each request to the server
  delay   chrony's "Peer del." of its interleaved samples
  T1_T2   the request leg, delay − T3_T4 of the same exchange

Each interleaved sample in the log is that of the exchange before the one
that completed it, and is paired with its exchange in the capture: the
log's offset and delay give T4 − T3 − c for it (delay/2 − offset), where
c is the client's clock against the host's, the same for neighbouring
samples; the capture gives T4 − T3. The log is slid along the capture
until that difference is steadiest from one sample to the next (the
alignment; its median step is printed, a few ns when found, the size of
the legs' own scatter when not). With -x, one line per paired sample goes
to EXCHANGES: ADDR:PORT idle T1_T2 T3_T4 delay (ns), for compare.py.
"""
import statistics
import sys

from ntpstamp import ns, q


def exchanges(rows, sa, sp):
    """Requests to the server and their replies, in order, with each
    request's index in rows (sorted by stamp)."""
    # A reply answers the request to the server from its port before it
    # (chrony takes a new source port per request, unless the client has
    # an acquisitionport: then order alone pairs them).
    pending, ex = {}, []
    for i, (t, _, src, spt, dst, dpt, _, org, rcv, xmt) in enumerate(rows):
        e = {"t": int(t), "org": int(org), "rcv": int(rcv), "xmt": int(xmt), "i": i}
        if dst == sa and dpt == sp:
            pending[int(spt)] = e
        elif src == sa and spt == sp and int(dpt) in pending:
            ex.append((pending.pop(int(dpt)), e))
    return ex


def align(back, samples):
    """The shift s pairing sample j with back[j + s], and the median step
    of c between neighbouring samples at that shift (None, None if no
    shift leaves enough pairs)."""
    best = (None, None)
    for s in range(-20, 21):
        c = [back[j + s] - (d / 2 - off) for j, (d, off) in enumerate(samples) if 0 <= j + s < len(back)]
        if len(c) < max(20, len(samples) // 2):
            continue
        step = statistics.median(abs(a - b) for a, b in zip(c, c[1:]))
        if best[1] is None or step < best[1]:
            best = (s, step)
    return best


def main():
    args, xout = sys.argv[1:], None
    if "-x" in args:
        k = args.index("-x")
        xout = open(args[k + 1], "w")
        del args[k:k + 2]
    cap, mlog, servers = args[0], args[1], args[2:]
    rows = sorted((line.split() for line in open(cap)), key=lambda r: int(r[0]))
    for srv in servers:
        sa, sp = srv.split(":")
        ex = exchanges(rows, sa, sp)
        res = {k: [] for k in ("T2err", "T3_T4", "resid", "idle", "delay", "T1_T2")}
        back, idle = [], []
        for (rq0, rs0), (rq1, rs1) in zip(ex, ex[1:]):
            # An interleaved reply echoes the request's receive field.
            if rs1["org"] != rq1["rcv"] or rq1["org"] != rs0["rcv"]:
                continue
            t2, t3 = ns(rs0["rcv"]), ns(rs1["xmt"])
            res["T2err"].append(t2 - rq0["t"])
            res["T3_T4"].append(rs0["t"] - t3)
            res["resid"].append(t3 - t2)
            back.append(rs0["t"] - t3)
            idle.append(rq0["t"] - int(rows[rq0["i"] - 1][0]) if rq0["i"] > 0 else None)
        res["idle"] = [v for v in idle if v is not None]
        samples = []
        for line in open(mlog):
            f = line.split()
            if len(f) > 18 and f[2] == sa and f[17][1:2] == "I":
                samples.append((float(f[12]) * 1e9, float(f[11]) * 1e9))
        shift, step = align(back, samples)
        paired = 0
        if shift is not None:
            for j, (d, _) in enumerate(samples):
                if 0 <= j + shift < len(back):
                    paired += 1
                    res["delay"].append(d)
                    res["T1_T2"].append(d - back[j + shift])
                    if xout and idle[j + shift] is not None:
                        print(srv, idle[j + shift], round(d - back[j + shift]), back[j + shift], round(d), file=xout)
        al = f"alignment step {step:.1f} ns" if step is not None else "no alignment"
        print(f"{srv}: exchanges {len(ex)}, interleaved {len(back)}, log I samples {len(samples)}, paired {paired} ({al}) (ns p10 / p50 / p90)")
        for k, v in res.items():
            if v:
                print(f"  {k:6s} {q(v, .1):9.0f} {q(v, .5):9.0f} {q(v, .9):9.0f}")
    if xout:
        xout.close()


if __name__ == "__main__":
    main()
