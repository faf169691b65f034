package leap

import (
	"crypto/sha1" // the format's own hash; see ParseList
	"fmt"
	"strconv"
	"strings"
)

// FormatList writes tb in the leap-seconds.list format with its #h hash, so
// that ParseList reads it back. Tests use it to make tables with leaps near
// a chosen date; an operator's table should come from the IERS or tzdata.
func FormatList(tb *Table) []byte {
	ntp := func(t interface{ Unix() int64 }) string {
		return strconv.FormatInt(t.Unix()-ntpEpochOffset, 10)
	}
	var b strings.Builder
	h := sha1.New()
	b.WriteString("# leap-seconds.list written by timegate\n")
	fmt.Fprintf(&b, "#$\t%s\n#@\t%s\n", ntp(tb.Updated), ntp(tb.Expires))
	h.Write([]byte(ntp(tb.Updated) + ntp(tb.Expires)))
	for _, e := range tb.Entries {
		fmt.Fprintf(&b, "%s\t%d\t# %s\n", ntp(e.At), e.TAI, e.At.UTC().Format("2 Jan 2006"))
		h.Write([]byte(ntp(e.At) + strconv.Itoa(e.TAI)))
	}
	sum := h.Sum(nil)
	b.WriteString("#h\t")
	for i := 0; i < 5; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		w := uint32(sum[4*i])<<24 | uint32(sum[4*i+1])<<16 | uint32(sum[4*i+2])<<8 | uint32(sum[4*i+3])
		b.WriteString(strconv.FormatUint(uint64(w), 16))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}
