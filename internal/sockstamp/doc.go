// Package sockstamp gets kernel receive timestamps (SO_TIMESTAMPNS) for UDP
// sockets, for the NTP server's T2 and the upstream client's T4: a stamp
// taken in the network stack leaves out user-space scheduling delay.
package sockstamp
