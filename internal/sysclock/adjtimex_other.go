//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package sysclock

func adjtimex(*timex) (int32, error) { return 0, ErrUnsupported }
