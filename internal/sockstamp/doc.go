// Package sockstamp gets kernel receive timestamps (SO_TIMESTAMPNS) for UDP
// sockets, for the NTP server's T2 and the upstream client's T4, and
// kernel transmit timestamps (SO_TIMESTAMPING, from the error queue) for
// the upstream client's T1: a stamp taken in the network stack leaves out
// user-space scheduling delay.
package sockstamp
