package main

import "testing"

func TestParseStatus(t *testing.T) {
	const status = `Name:	timegate
Umask:	0022
State:	S (sleeping)
VmPeak:	 1240000 kB
VmSize:	 1239000 kB
VmHWM:	   12345 kB
VmRSS:	   11000 kB
RssAnon:	    4000 kB
Threads:	7
`
	m, ok := ParseStatus(status)
	if !ok || m.RSSkB != 11000 || m.HWMkB != 12345 {
		t.Fatalf("got %+v, %v", m, ok)
	}
	// A zombie has no Vm lines.
	if _, ok := ParseStatus("Name:\tx\nState:\tZ (zombie)\n"); ok {
		t.Fatal("zombie status parsed")
	}
}

func TestUDPDrops(t *testing.T) {
	const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  123: 0100007F:4A4B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 1048011  
  124: 0100007F:0463 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5  
  125: 00000000:4A4B 0100007F:0463 01 00000000:00000000 00:00000000 00000000     0        0 4244 2 0000000000000000 2  
`
	if d, ok := UDPDrops(udp, 0x4a4b); !ok || d != 1048013 {
		t.Fatalf("port 0x4a4b: %d, %v", d, ok)
	}
	if d, ok := UDPDrops(udp, 1123); !ok || d != 5 {
		t.Fatalf("port 1123: %d, %v", d, ok)
	}
	if _, ok := UDPDrops(udp, 9); ok {
		t.Fatal("port 9 found")
	}
	const udp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  456: 00000000000000000000000001000000:0463 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 77
`
	if d, ok := UDPDrops(udp6, 1123); !ok || d != 77 {
		t.Fatalf("udp6 port 1123: %d, %v", d, ok)
	}
}
