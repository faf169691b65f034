#!/usr/bin/env python3
"""The request leg T2 − T1 after a short and a long idle (issue 14).

Usage: idleleg.py N IDLE_S,IDLE_S,... ADDR:PORT     (loopback; root not needed)

Sends N interleaved-style requests, each from a new connected socket with
kernel transmit stamps (SO_TIMESTAMPING TX/RX software, OPT_CMSG: what a
chrony 4.3 client sets), sleeping the listed idles in turn between them.
T1 is the kernel's transmit stamp (error queue), T2 the server's receive
timestamp: for timegate exactly the kernel's receive stamp (legs.py
checks it), so T2 − T1 is the client's own kernel path from its transmit
stamp to the receive stamp, the request's leg of an NTP delay. Prints its
p10/p50/p90 in ns by the idle that came before the request.
"""
import os
import select
import socket
import struct
import sys
import time

from ntpstamp import ns, q

SO_TIMESTAMPING = 37
SOF_TX_SOFTWARE, SOF_RX_SOFTWARE, SOF_SOFTWARE, SOF_OPT_CMSG = 1 << 1, 1 << 3, 1 << 4, 1 << 10
MSG_ERRQUEUE = 0x2000


def main():
    n, idles = int(sys.argv[1]), [float(x) for x in sys.argv[2].split(",")]
    addr, port = sys.argv[3].split(":")
    srv = (addr, int(port))
    res = {i: [] for i in idles}
    prev_rx, idle = None, idles[-1]
    for k in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TX_SOFTWARE | SOF_RX_SOFTWARE | SOF_SOFTWARE | SOF_OPT_CMSG)
        s.connect(srv)
        req = bytearray(48)
        req[0] = 0x23
        req[40:48] = os.urandom(8)
        if prev_rx:
            req[24:32], req[32:40] = prev_rx, os.urandom(8)
        s.send(req)
        select.select([s], [], [], 1)
        t1 = None
        try:
            while True:
                _, anc, _, _ = s.recvmsg(512, 512, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
                for lvl, typ, d in anc:
                    if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPING:
                        sec, nsec = struct.unpack("qq", d[:16])
                        t1 = sec * 10**9 + nsec
        except BlockingIOError:
            pass
        s.settimeout(1)
        try:
            r = s.recv(128)
        except socket.timeout:
            r = b""
        s.close()
        if len(r) >= 48:
            prev_rx = r[32:40]
            if t1 is not None:
                res[idle].append(ns(struct.unpack("!Q", r[32:40])[0]) - t1)
        idle = idles[k % len(idles)]
        time.sleep(idle)
    for i, v in res.items():
        if v:
            print(f"{sys.argv[3]} idle before {i * 1e3:.0f} ms: n={len(v)} T2-T1 ns p10 {q(v, .1)} p50 {q(v, .5)} p90 {q(v, .9)}")


if __name__ == "__main__":
    main()
