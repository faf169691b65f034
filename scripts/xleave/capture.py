#!/usr/bin/env python3
"""Capture NTP datagrams on lo with their kernel receive stamps (issue 14).

Usage: capture.py OUT PORT[,PORT...] SECONDS      (root)

Writes one line per datagram to or from one of the ports:
  STAMP_NS PKTTYPE SRC SPORT DST DPORT MODE ORIGIN RECEIVE TRANSMIT
The stamp is skb->tstamp as netif_rx set it: on loopback the very stamp
the receiving socket reads (a server's T2, a client's T4). A packet socket
on lo sees each datagram once, on its way in; the tap runs after the
stamp, so it does not lengthen the path between T1 and T2 or T3 and T4.
Only the first 48 octets after the UDP header are read.
"""
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35
ETH_P_IP = 0x0800


def main():
    out, ports, secs = sys.argv[1], {int(p) for p in sys.argv[2].split(",")}, float(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    s.bind(("lo", 0))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(0.5)
    end = time.time() + secs
    with open(out, "w") as f:
        while time.time() < end:
            try:
                data, anc, _, addr = s.recvmsg(256, 256)
            except socket.timeout:
                continue
            if len(data) < 20 or data[9] != 17:
                continue
            ihl = (data[0] & 15) * 4
            if len(data) < ihl + 8 + 48:
                continue
            sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
            if sport not in ports and dport not in ports:
                continue
            ts = None
            for lvl, typ, d in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(d) >= 16:
                    sec, nsec = struct.unpack("qq", d[:16])
                    ts = sec * 10**9 + nsec
            if ts is None:
                continue
            ntp = data[ihl + 8:ihl + 8 + 48]
            org, rcv, xmt = struct.unpack("!QQQ", ntp[24:48])
            src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
            f.write(f"{ts} {addr[2]} {src} {sport} {dst} {dport} {ntp[0] & 7} {org} {rcv} {xmt}\n")


if __name__ == "__main__":
    main()
