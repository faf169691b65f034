// Package sysclock disciplines the host's system clock through adjtimex(2),
// for operators who opt in with `clockcontrol on`: by default timegate never
// touches the system clock and serves its own software clock.
//
// It implements upstream.Discipliner exactly as that interface demands, or
// refuses: the soft clock maps system time back to its own timescale with the
// same law, so an approximation would corrupt the served time.
package sysclock

import (
	"errors"
	"fmt"
	"math"
	"time"

	"timegate/upstream"
)

var _ upstream.Discipliner = (*Clock)(nil)

// Errors.
var (
	ErrRate        = errors.New("sysclock: the kernel slews single-shot offsets at 500 ppm only")
	ErrFreq        = errors.New("sysclock: frequency beyond the kernel's ±500 ppm")
	ErrUnsupported = errors.New("sysclock: system clock discipline is supported on Linux only")
)

// kernelSlew is the rate at which Linux slews an ADJ_OFFSET_SINGLESHOT
// correction (the old adjtime(2) semantics): 500 µs per second.
const kernelSlew = 500e-6

// maxKernelFreq is the kernel's frequency limit (MAXFREQ, 500 ppm).
const maxKernelFreq = 500e-6

// timex holds the adjtimex fields this package sets, in portable form; the
// platform file converts it to the kernel's struct.
type timex struct {
	modes  uint32
	offset int64 // µs for single-shot
	freq   int64 // ppm with a 16-bit fraction
	status int32
	sec    int64
	nsec   int64
}

// adjtimex flags (linux/timex.h).
const (
	adjFrequency        = 0x0002
	adjStatus           = 0x0010
	adjSetOffset        = 0x0100
	adjNano             = 0x2000
	adjOffsetSingleshot = 0x8001
	staPLL              = 0x0001
)

// Clock disciplines the system clock. Syscall is the adjtimex call; tests
// replace it with a fake, so the real clock is never touched by a test.
type Clock struct {
	Syscall func(*timex) (status int32, err error)
}

// New returns a Clock on the real adjtimex, after turning the kernel's own
// PLL off so that it does not fight our corrections. It fails without
// CAP_SYS_TIME, which is how an operator learns the directive cannot work.
func New() (*Clock, error) {
	c := &Clock{Syscall: adjtimex}
	return c, c.init()
}

func (c *Clock) init() error {
	var t timex
	status, err := c.Syscall(&t) // modes 0: read only
	if err != nil {
		return fmt.Errorf("sysclock: reading the kernel clock state: %w", err)
	}
	t = timex{modes: adjStatus, status: status &^ staPLL}
	if _, err := c.Syscall(&t); err != nil {
		return fmt.Errorf("sysclock: turning the kernel PLL off (needs CAP_SYS_TIME): %w", err)
	}
	return nil
}

// Step jumps the system clock by offset (ADJ_SETOFFSET).
func (c *Clock) Step(offset time.Duration) error {
	sec := int64(offset / time.Second)
	nsec := int64(offset % time.Second)
	if nsec < 0 { // the kernel wants 0 <= nsec < 1e9
		sec--
		nsec += int64(time.Second)
	}
	t := timex{modes: adjSetOffset | adjNano, sec: sec, nsec: nsec}
	if _, err := c.Syscall(&t); err != nil {
		return fmt.Errorf("sysclock: step %v: %w", offset, err)
	}
	return nil
}

// Adjust sets the frequency and replaces any pending slew with a new
// single-shot offset. The two are separate calls: the kernel rejects
// ADJ_OFFSET_SINGLESHOT combined with any other mode.
func (c *Clock) Adjust(a upstream.Adjustment) error {
	freq, offset, rate := a.Freq, a.Offset, a.Rate
	if math.Abs(freq) > maxKernelFreq {
		return fmt.Errorf("%w: %.1f ppm", ErrFreq, freq*1e6)
	}
	if offset != 0 && math.Abs(rate-kernelSlew) > 1e-9 {
		return fmt.Errorf("%w: asked for %.1f ppm", ErrRate, rate*1e6)
	}
	t := timex{modes: adjFrequency, freq: int64(math.Round(freq * 1e6 * 65536))}
	if _, err := c.Syscall(&t); err != nil {
		return fmt.Errorf("sysclock: set frequency: %w", err)
	}
	t = timex{modes: adjOffsetSingleshot, offset: offset.Microseconds()}
	if _, err := c.Syscall(&t); err != nil {
		return fmt.Errorf("sysclock: slew %v: %w", offset, err)
	}
	return nil
}
