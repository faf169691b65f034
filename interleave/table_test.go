package interleave

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"timegate/ntp"
)

var (
	alice = netip.MustParseAddr("192.0.2.1")
	bob   = netip.MustParseAddr("2001:db8::2")
)

func newTable(t testing.TB, size int) *Table {
	t.Helper()
	tb, err := New(size, bytes.NewReader(bytes.Repeat([]byte{7}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestTakeOnce(t *testing.T) {
	tb := newTable(t, 64)
	rx := ntp.Time64(0x1234_5678_0000_0001)
	tx := rx + 40_000 // about 9 µs later
	tb.Save(rx, alice, tx)
	if _, ok := tb.Take(rx, bob); ok {
		t.Fatal("another client's request took the entry")
	}
	got, ok := tb.Take(rx, alice)
	if !ok || got>>txShift != tx>>txShift {
		t.Fatalf("Take = %#x, %v; want %#x", got, ok, tx)
	}
	if _, ok := tb.Take(rx, alice); ok {
		t.Fatal("one entry answered two interleaved requests")
	}
	if _, ok := tb.Take(rx+2, alice); ok {
		t.Fatal("an unknown receive timestamp was found")
	}
}

// A receive timestamp given twice is disabled: neither reply's transmit
// time can be told from the other's.
func TestSaveDuplicateDisables(t *testing.T) {
	tb := newTable(t, 64)
	rx := ntp.Time64(0x1_0000_0001)
	tb.Save(rx, alice, rx+100)
	tb.Save(rx, alice, rx+200)
	if _, ok := tb.Take(rx, alice); ok {
		t.Fatal("a duplicated receive timestamp was answered")
	}
}

func TestUpdateTx(t *testing.T) {
	tb := newTable(t, 64)
	rx := ntp.Time64(0x10_0000_0001)
	daemon := rx + 1<<20
	tb.Save(rx, alice, daemon)
	if tb.UpdateTx(rx, daemon-1<<10) {
		t.Error("a kernel time before the daemon's was taken")
	}
	if tb.UpdateTx(rx, daemon+maxTxDelay+1<<10) {
		t.Error("a kernel time more than a second after the daemon's was taken")
	}
	if tb.UpdateTx(rx+2, daemon) {
		t.Error("an unknown entry was updated")
	}
	kernel := daemon + 1<<12
	if !tb.UpdateTx(rx, kernel) {
		t.Fatal("kernel time refused")
	}
	if got, ok := tb.Take(rx, alice); !ok || got>>txShift != kernel>>txShift {
		t.Fatalf("Take = %#x, %v; want the kernel's %#x", got, ok, kernel)
	}
}

// An offset beyond the ±2 s an entry holds (a clock step between the
// readings) leaves the entry without a transmit time: no interleaved
// answer, rather than a wrong one.
func TestTxOutOfRange(t *testing.T) {
	tb := newTable(t, 64)
	rx := ntp.Time64(100 << 32)
	tb.Save(rx, alice, rx+3<<32)
	if _, ok := tb.Take(rx, alice); ok {
		t.Fatal("an offset of 3 s was answered")
	}
	rx2 := rx + 1
	tb.Save(rx2, alice, rx2-3<<31) // -1.5 s: held
	if got, ok := tb.Take(rx2, alice); !ok || got>>txShift != (rx2-3<<31)>>txShift {
		t.Fatalf("Take = %#x, %v", got, ok)
	}
}

// The table never grows: a flood of requests from a million spoofed
// sources fills its fixed capacity and then evicts, and a client whose
// reply is more recent than the flood's entries in its bucket still gets
// its interleaved answer.
func TestSpoofedFloodBounded(t *testing.T) {
	const size = 4096
	tb := newTable(t, size)
	rng := rand.New(rand.NewPCG(1, 2))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rx := ntp.Time64(0x1000_0000_0000_0001)
	var a4 [4]byte
	for range 1_000_000 {
		rx += 2 * ntp.Time64(1+rng.IntN(4000)) // ~1 µs apart, always odd
		for i := range a4 {
			a4[i] = byte(rng.Uint32())
		}
		tb.Save(rx, netip.AddrFrom4(a4), rx+5000)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := tb.Len(); n != tb.Capacity() || n != size {
		t.Fatalf("table holds %d entries, capacity %d; want exactly %d", n, tb.Capacity(), size)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<10 {
		t.Fatalf("heap grew by %d bytes during the flood", grew)
	}
	// A real client's exchange after the flood is kept and answered.
	rx += 1000
	tb.Save(rx, bob, rx+777)
	for range 3 { // three more spoofed replies cannot push a whole bucket out
		rx += 2
		tb.Save(rx, alice, rx)
	}
	if _, ok := tb.Take(rx-6, bob); !ok {
		t.Fatal("the client's entry was lost")
	}
	if allocs := testing.AllocsPerRun(1000, func() {
		rx += 2
		tb.Save(rx, alice, rx+1)
		tb.Take(rx, alice)
		tb.UpdateTx(rx, rx+3)
	}); allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

func TestNewSizes(t *testing.T) {
	for _, n := range []int{0, MinSize - 1, MaxSize + 1} {
		if _, err := New(n, nil); !errors.Is(err, ErrSize) {
			t.Errorf("New(%d) = %v, want ErrSize", n, err)
		}
	}
	tb, err := New(1000, nil)
	if err != nil || tb.Capacity() != 512 {
		t.Fatalf("New(1000): capacity %d, %v; want 512", tb.Capacity(), err)
	}
}

func BenchmarkSaveTake(b *testing.B) {
	tb := newTable(b, 8192)
	rx := ntp.Time64(1<<40 | 1)
	b.ReportAllocs()
	for b.Loop() {
		rx += 2
		tb.Save(rx, alice, rx+100)
		tb.Take(rx-200, alice)
	}
}
