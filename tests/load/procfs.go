package main

import (
	"bufio"
	"strconv"
	"strings"
)

// Memory is a process's resident set as /proc/PID/status reports it, in kB.
type Memory struct {
	RSSkB int64 `json:"vmrss_kb"` // VmRSS: resident now
	HWMkB int64 `json:"vmhwm_kb"` // VmHWM: peak resident
}

// ParseStatus reads VmRSS and VmHWM from the text of /proc/PID/status.
// ok is false when either is missing (e.g. a zombie).
func ParseStatus(text string) (m Memory, ok bool) {
	var rss, hwm bool
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, val, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			m.RSSkB, rss = n, true
		case "VmHWM":
			m.HWMkB, hwm = n, true
		}
	}
	return m, rss && hwm
}

// UDPDrops sums the "drops" column of the sockets bound to local port port
// in the text of /proc/net/udp or /proc/net/udp6: datagrams the kernel
// discarded because the socket's receive buffer was full. found is false
// when no socket has that port.
func UDPDrops(text string, port uint16) (drops uint64, found bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if len(f) < 13 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil || uint16(p) != port {
			continue
		}
		d, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			continue
		}
		drops += d
		found = true
	}
	return drops, found
}
