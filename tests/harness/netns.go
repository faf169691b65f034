package harness

import "testing"

// inNetns returns the command line that runs path with args in network namespace ns:
// `ip netns exec NS PATH ARGS...`. ip execs the command after entering the namespace,
// so the process keeps the pid, and the process group, that the harness watches.
func inNetns(t testing.TB, ns, path string, args []string) (string, []string) {
	t.Helper()
	ip := RequireBinary(t, "ip")
	return ip, append([]string{"netns", "exec", ns, path}, args...)
}
