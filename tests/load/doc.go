// Command load is timegate's load tool: it measures an NTP server's
// throughput and its behaviour under a spoofed flood, on loopback or on the
// benchmarking network 198.18.0.0/15 only (scripts/load.sh's veth pair).
//
// Two modes:
//
//	load -mode plain -target 127.0.0.1:P [-rate R] [-duration D] [-conns N] [-json]
//	load -mode spoof -target 127.0.0.1:P -sources N [-rate R] [-duration D] [-json]
//
// plain sends mode-3 NTPv4 requests from N connected UDP sockets, each with
// a random transmit timestamp (a nonce), and counts the replies whose origin
// timestamp matches a request still in its fixed-size ring of nonces. It
// prints requests sent, replies, loss, achieved rates and reply latency
// percentiles. Requests sent is over the sending time; replies per second is
// over the time from the first request to the last reply. Datagrams go out
// and come in up to 32/64 per system call (sendmmsg/recvmmsg on Linux amd64
// and arm64): on one core, one system call per request could not outrun
// chronyd. Latency is measured in user space by the tool, so at saturation
// it is mostly queueing in the server's socket buffer.
//
// spoof needs root (CAP_NET_RAW): it writes whole IPv4 datagrams through a
// raw socket (IPPROTO_RAW, IP_HDRINCL) whose source addresses walk N
// distinct addresses of 127.0.0.0/8, so the server sees N distinct clients.
// The replies go to those loopback addresses, which are all local: the tool
// binds the source port on 0.0.0.0 to own it, counts them there and they go
// nowhere else.
//
// With -pid the tool samples that process's VmRSS and VmHWM from
// /proc/PID/status at the start, every -every and at the end, next to the
// progress counters, and reads the kernel's drop counters of the target's
// UDP socket from /proc/PID/net/udp{,6} (the target's own network
// namespace), so that loss can be told apart from
// drops on the tool's own sockets.
//
// Figures are measurements, not assertions; the unit tests check the pure
// core (request layout, nonce ring, percentiles, pacing, IPv4 checksum,
// source walk, /proc parsing) and one short plain run against an in-process
// server.
//
// Safety bounds: the target must be a loopback address or one of
// 198.18.0.0/15; the duration, the
// number of sockets, sources and the rate are capped (see the limit
// constants); the run stops by itself.
package main
