package ntp

import "testing"

func TestRefIDString(t *testing.T) {
	for _, tc := range []struct {
		stratum uint8
		id      uint32
		want    string
	}{
		{1, 'G'<<24 | 'P'<<16 | 'S'<<8, "????"}, // a NUL byte is not printable
		{1, 'P'<<24 | 'P'<<16 | 'S'<<8 | ' ', "PPS "},
		{16, 'I'<<24 | 'N'<<16 | 'I'<<8 | 'T', "INIT"},
		{0, uint32(KissRATE), "RATE"},
		{2, 0xc0000201, "192.0.2.1"},
		{15, 0x7f7f0101, "127.127.1.1"},
	} {
		if got := RefIDString(tc.stratum, tc.id); got != tc.want {
			t.Errorf("RefIDString(%d, %#x) = %q, want %q", tc.stratum, tc.id, got, tc.want)
		}
	}
}
