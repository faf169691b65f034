package sysclock

import (
	"errors"
	"testing"
	"time"

	"timegate/upstream"
)

// fakeKernel records adjtimex calls; the real system clock is never touched.
type fakeKernel struct {
	calls  []timex
	status int32
	fail   error
}

func (k *fakeKernel) call(t *timex) (int32, error) {
	k.calls = append(k.calls, *t)
	if t.modes&adjStatus != 0 {
		k.status = t.status
	}
	return k.status, k.fail
}

func newFake(t *testing.T) (*Clock, *fakeKernel) {
	k := &fakeKernel{status: staPLL | 0x40}
	c := &Clock{Syscall: k.call}
	if err := c.init(); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestInitTurnsKernelPLLOff(t *testing.T) {
	_, k := newFake(t)
	if len(k.calls) != 2 || k.calls[0].modes != 0 || k.calls[1].modes != adjStatus {
		t.Fatalf("calls %+v", k.calls)
	}
	if k.status&staPLL != 0 || k.status&0x40 == 0 {
		t.Errorf("status %#x: PLL must be off, other bits kept", k.status)
	}
}

func TestStep(t *testing.T) {
	c, k := newFake(t)
	for _, tc := range []struct {
		d         time.Duration
		sec, nsec int64
	}{
		{1500 * time.Millisecond, 1, 500_000_000},
		{-400 * time.Millisecond, -1, 600_000_000},
		{-2 * time.Second, -2, 0},
	} {
		k.calls = nil
		if err := c.Step(tc.d); err != nil {
			t.Fatal(err)
		}
		got := k.calls[0]
		if got.modes != adjSetOffset|adjNano || got.sec != tc.sec || got.nsec != tc.nsec {
			t.Errorf("Step(%v) = %+v, want sec %d nsec %d", tc.d, got, tc.sec, tc.nsec)
		}
	}
}

func TestAdjust(t *testing.T) {
	c, k := newFake(t)
	k.calls = nil
	err := c.Adjust(upstream.Adjustment{Freq: -30e-6, Offset: 2500 * time.Microsecond, Rate: 500e-6})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.calls) != 2 {
		t.Fatalf("calls %+v", k.calls)
	}
	if f := k.calls[0]; f.modes != adjFrequency || f.freq != -30*65536 {
		t.Errorf("frequency call %+v, want -30 ppm << 16", f)
	}
	if o := k.calls[1]; o.modes != adjOffsetSingleshot || o.offset != 2500 {
		t.Errorf("offset call %+v, want single-shot 2500 µs alone", o)
	}
}

func TestAdjustRefusesWhatTheKernelCannotDo(t *testing.T) {
	c, k := newFake(t)
	k.calls = nil
	if err := c.Adjust(upstream.Adjustment{Freq: 0, Offset: time.Millisecond, Rate: 100e-6}); !errors.Is(err, ErrRate) {
		t.Errorf("100 ppm slew: %v", err)
	}
	if err := c.Adjust(upstream.Adjustment{Freq: 600e-6}); !errors.Is(err, ErrFreq) {
		t.Errorf("600 ppm: %v", err)
	}
	if len(k.calls) != 0 {
		t.Errorf("refused adjustments reached the kernel: %+v", k.calls)
	}
}

func TestKernelErrorsPropagate(t *testing.T) {
	c, k := newFake(t)
	k.fail = errors.New("operation not permitted")
	if err := c.Step(time.Second); err == nil {
		t.Error("step error swallowed")
	}
	k2 := &fakeKernel{fail: errors.New("EPERM")}
	if err := (&Clock{Syscall: k2.call}).init(); err == nil {
		t.Error("init without permission succeeded")
	}
}
