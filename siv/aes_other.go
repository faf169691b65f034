//go:build !amd64 || purego

package siv

// useAsm is false: without the amd64 AES-NI kernels every key takes the
// crypto/aes path, and the functions below are never called.
const useAsm = false

func expandKeyAsm(int, *byte, *byte)                       { panic("siv: no AES assembly") }
func encryptAsm(int, *byte, *byte, *byte)                  { panic("siv: no AES assembly") }
func cbcAsm(int, *byte, *byte, *byte, int)                 { panic("siv: no AES assembly") }
func ctrAsm(int, *byte, uint64, uint64, *byte, *byte, int) { panic("siv: no AES assembly") }

func cbc3Asm(int, *byte, *byte, *byte, *byte, *byte, int, int, int) {
	panic("siv: no AES assembly")
}

func cbc4Asm(*[4]lane, int) { panic("siv: no AES assembly") }
