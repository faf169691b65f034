"""Helpers shared by legs.py and idleleg.py (imported from this directory,
which Python puts first on sys.path when either script runs)."""


def ns(v):
    """An NTP 32.32 timestamp as Unix nanoseconds, rounded."""
    return ((v >> 32) - 2208988800) * 10**9 + (((v & 0xffffffff) * 10**9 + (1 << 31)) >> 32)


def q(v, p):
    """The p quantile (0..1) of v, nearest rank."""
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]
