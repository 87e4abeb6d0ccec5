// Package jsonesc appends JSON strings; the root package and the exporters
// share it.
package jsonesc

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// plain marks the bytes that are copied as they are: printable ASCII other
// than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD. Runs of plain
// bytes are found eight at a time and copied whole.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start, i := 0, 0
	for i < len(s) {
		for i+8 <= len(s) && plainWord(load64(s, i)) {
			i += 8
		}
		// Byte by byte up to the next word.
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			switch {
			case plain[c]:
				i++
			case c < utf8.RuneSelf:
				b = append(b, s[start:i]...)
				b = appendEscape(b, c)
				i++
				start = i
			default:
				r, size := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && size == 1 {
					b = append(b, s[start:i]...)
					b = append(b, "\ufffd"...)
					start = i + 1
				}
				i += size
			}
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the escape of the ASCII byte c.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// load64 reads the eight bytes of s from i as a little-endian word (the
// compiler combines the loads into one). load64 and plainWord are small
// enough to be inlined into AppendString's loop, where one function of
// both was not: BenchmarkAppendString/text 1.0 -> 2.0 GB/s.
func load64(s string, i int) uint64 {
	w := s[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// plainWord reports whether no byte of x is a control character, a quote,
// a backslash or above ASCII. (The classic "has a byte less than n" and
// "has a zero byte" word tricks; each term is exact about whether some
// byte matches.)
func plainWord(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(bs-lo)&^bs|x)&hi == 0
}
