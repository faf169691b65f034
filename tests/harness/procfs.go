package harness

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStat is the part of /proc/PID/stat the harness needs.
type procStat struct {
	state byte
	pgrp  int
}

// readProcStat parses /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted after the last ')'.
func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
	if len(f) < 3 {
		return procStat{}, false
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], pgrp: pgrp}, true
}

// groupMembers lists the processes of group pgid that have not exited. Zombies
// count as exited: they are orphans waiting for init to reap them (chronyd's
// NTS-KE helpers end that way), not running code.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok && st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitGroupGone(pgid int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(pollInterval)
	}
}

// heldPorts returns the UDP ports bound and the TCP ports listened on by any
// live process of group pgid, from /proc/net and the processes' descriptors.
// Unlike a probe bind or a probe packet it cannot steal the port or disturb the
// daemon's counters and rate limits.
func heldPorts(pgid int) (udp, tcp map[int]bool) {
	inodes := map[string]bool{}
	for _, pid := range groupMembers(pgid) {
		fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			l, err := os.Readlink(fdDir + "/" + e.Name())
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	// The group's own view of /proc/net: it may run in another network namespace.
	net := "/proc/" + strconv.Itoa(pgid) + "/net/"
	udp = socketPorts([]string{net + "udp", net + "udp6"}, "", inodes)
	tcp = socketPorts([]string{net + "tcp", net + "tcp6"}, "0A", inodes) // 0A = LISTEN
	return udp, tcp
}

// socketPorts reads /proc/net/{udp,tcp}[6] lines:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
//	0: 0100007F:2B67 00000000:0000 07 ...                                               12345
func socketPorts(files []string, state string, inodes map[string]bool) map[int]bool {
	ports := map[int]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] || (state != "" && f[3] != state) {
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if port, err := strconv.ParseUint(f[1][i+1:], 16, 16); err == nil {
				ports[int(port)] = true
			}
		}
	}
	return ports
}

// portsStatus reports whether group pgid holds all the given UDP and TCP ports.
func portsStatus(pgid int, udpPorts, tcpPorts []int) (bool, string) {
	udp, tcp := heldPorts(pgid)
	var missing []string
	for _, p := range udpPorts {
		if p != 0 && !udp[p] {
			missing = append(missing, "udp/"+strconv.Itoa(p))
		}
	}
	for _, p := range tcpPorts {
		if p != 0 && !tcp[p] {
			missing = append(missing, "tcp/"+strconv.Itoa(p)+" (listen)")
		}
	}
	if len(missing) > 0 {
		return false, "ports not yet held by the process: " + strings.Join(missing, ", ")
	}
	return true, "ports held"
}
