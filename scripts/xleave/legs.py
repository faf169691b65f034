#!/usr/bin/env python3
"""Split a chronyd client's interleaved delays into their two legs (issue 14).

Usage: legs.py CAPTURE MEASUREMENTS_LOG ADDR:PORT...

CAPTURE is capture.py's output for the run, MEASUREMENTS_LOG the client's
chrony measurements.log. A chrony 4.3 client hides its own T1 and T4 (its
requests carry random receive and transmit fields), but on loopback the
capture has the kernel's T2 of every request and T4 of every reply, and
reply k carries T3 of reply k-1. Per server, in ns (p10 / p50 / p90):
  T2err   the served receive timestamp minus the kernel's stamp of the
          request (0 for a server that serves the stamp itself)
  T3_T4   the return leg: the client's kernel stamp of reply k-1 − its T3
  resid   T3 − T2, the server's residence
  idle    how long lo carried nothing before each request to the server
  delay   chrony's "Peer del." of its interleaved samples
  T1_T2   the request leg, delay − T3_T4 (both legs are single-CPU
          intervals and chrony's clock ran at 0 ppm to the host's, so this
          holds in distribution; the log and the capture are paired from
          their ends, not sample by sample)
"""
import sys

from ntpstamp import ns, q


def main():
    cap, mlog, servers = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = [line.split() for line in open(cap)]
    allt = sorted(int(r[0]) for r in rows)
    for srv in servers:
        sa, sp = srv.split(":")
        # A reply answers the request to the server from its port before
        # it (chrony takes a new source port per request, unless the client
        # has an acquisitionport: then order alone pairs them).
        pending, ex = {}, []
        for t, _, src, spt, dst, dpt, _, org, rcv, xmt in sorted(rows, key=lambda r: int(r[0])):
            e = {"t": int(t), "org": int(org), "rcv": int(rcv), "xmt": int(xmt)}
            if dst == sa and dpt == sp:
                pending[int(spt)] = e
            elif src == sa and spt == sp and int(dpt) in pending:
                ex.append((pending.pop(int(dpt)), e))
        res = {k: [] for k in ("T2err", "T3_T4", "resid", "idle", "delay", "T1_T2")}
        back = []
        for (rq0, rs0), (rq1, rs1) in zip(ex, ex[1:]):
            # An interleaved reply echoes the request's receive field.
            if rs1["org"] != rq1["rcv"] or rq1["org"] != rs0["rcv"]:
                continue
            t2, t3 = ns(rs0["rcv"]), ns(rs1["xmt"])
            res["T2err"].append(t2 - rq0["t"])
            res["T3_T4"].append(rs0["t"] - t3)
            res["resid"].append(t3 - t2)
            back.append(rs0["t"] - t3)
        for rq, _ in ex:
            i = allt.index(rq["t"])
            if i > 0:
                res["idle"].append(rq["t"] - allt[i - 1])
        dl = []
        for line in open(mlog):
            f = line.split()
            if len(f) > 18 and f[2] == sa and f[17][1:2] == "I":
                dl.append(float(f[12]) * 1e9)
        m = min(len(dl), len(back))
        for d, b in zip(dl[len(dl) - m:], back[len(back) - m:]):
            res["delay"].append(d)
            res["T1_T2"].append(d - b)
        print(f"{srv}: exchanges {len(ex)}, interleaved {len(back)}, log I samples {len(dl)} (ns p10 / p50 / p90)")
        for k, v in res.items():
            if v:
                print(f"  {k:6s} {q(v, .1):9.0f} {q(v, .5):9.0f} {q(v, .9):9.0f}")


if __name__ == "__main__":
    main()
