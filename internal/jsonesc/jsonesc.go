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
		for i+8 <= len(s) && plain8(s, i) {
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

// plain8 reports whether the eight bytes of s from i are all plain: none is
// a control character, a quote, a backslash or above ASCII. (The classic
// "has a byte less than n" and "has a zero byte" word tricks; each term is
// exact about whether some byte matches.)
func plain8(s string, i int) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	ctl := (x - lo*0x20) &^ x
	quote := (q - lo) &^ q
	back := (bs - lo) &^ bs
	return (ctl|quote|back|x)&hi == 0
}
