// Package jsonscan is a small validating JSON scanner for the hot
// decoding paths of the Prefactor exporter and its fake server: it reads
// the common shapes without allocating and accepts only what encoding/json
// accepts, so a caller can fall back to encoding/json for everything else.
// Members, beside it, walks JSON already known to be valid (a record's
// payload) without checking it again.
package jsonscan

import "encoding/binary"

// Scanner reads JSON from B at offset I. Its methods skip white space
// before what they read and return false on anything they do not accept,
// leaving I wherever they stopped.
type Scanner struct {
	B []byte
	I int
	// S, when set, is B as a string: the strings read are then its
	// substrings instead of copies, and converting B once is all they
	// cost. Whoever keeps one longer than S should copy it.
	S string
}

// NewScanner returns a scanner of b whose strings are substrings of one
// copy of b (see S).
func NewScanner(b []byte) Scanner { return Scanner{B: b, S: string(b)} }

// String returns b, a subslice of B, as a string: a substring of S when it
// is set.
func (s *Scanner) String(b []byte) string {
	if s.S == "" {
		return string(b)
	}
	i := cap(s.B) - cap(b)
	return s.S[i : i+len(b)]
}

// Arena hands out pointers to zeroed values of T, allocated N at a time:
// a full chunk is replaced, never grown, so the pointers stay valid.
type Arena[T any] struct {
	N     int
	chunk []T
}

// New returns a pointer to a zeroed T.
func (a *Arena[T]) New() *T {
	if len(a.chunk) == cap(a.chunk) {
		a.chunk = make([]T, 0, max(a.N, 1))
	}
	var zero T
	a.chunk = append(a.chunk, zero)
	return &a.chunk[len(a.chunk)-1]
}

func (s *Scanner) ws() {
	if s.I < len(s.B) && s.B[s.I] > ' ' { // compact JSON: no white space
		return
	}
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Next skips white space and returns the next byte (0 at the end).
func (s *Scanner) Next() byte {
	if s.I < len(s.B) && s.B[s.I] > ' ' { // compact JSON: no white space
		return s.B[s.I]
	}
	s.ws()
	if s.I >= len(s.B) {
		return 0
	}
	return s.B[s.I]
}

// Lit reads the literal l.
func (s *Scanner) Lit(l string) bool {
	if len(s.B)-s.I < len(l) || string(s.B[s.I:s.I+len(l)]) != l {
		return false
	}
	s.I += len(l)
	return true
}

// PlainString reads a string without escapes, of printable ASCII.
func (s *Scanner) PlainString() (string, bool) {
	i, j, ok := s.PlainSpan()
	if !ok {
		return "", false
	}
	return s.String(s.B[i:j]), true
}

// PlainSpan reads a string without escapes, of printable ASCII, and
// returns where its contents lie in B: B[start:end].
func (s *Scanner) PlainSpan() (start, end int, ok bool) {
	if s.Next() != '"' {
		return 0, 0, false
	}
	start = s.I + 1
	j := start
	for j < len(s.B) && plainASCII[s.B[j]] {
		j++
	}
	if j >= len(s.B) || s.B[j] != '"' {
		return 0, 0, false
	}
	s.I = j + 1
	return start, j, true
}

// Key reads an object key and its colon, without allocating.
func (s *Scanner) Key() ([]byte, bool) {
	if s.Next() != '"' {
		return nil, false
	}
	start := s.I + 1
	j := start
	for j < len(s.B) && plainASCII[s.B[j]] {
		j++
	}
	if j >= len(s.B) || s.B[j] != '"' {
		return nil, false
	}
	k := s.B[start:j]
	s.I = j + 1
	if s.Next() != ':' {
		return nil, false
	}
	s.I++
	return k, true
}

// Raw reads any JSON value into *p, as its bytes.
func (s *Scanner) Raw(p *[]byte) bool {
	s.ws()
	start := s.I
	if !s.Skip() {
		return false
	}
	*p = s.B[start:s.I]
	return true
}

// Skip skips a valid JSON value (the grammar of encoding/json's scanner),
// nested at most 64 deep. On failure I is left where it was.
func (s *Scanner) Skip() bool {
	i, ok := skipValue(s.B, s.I)
	if ok {
		s.I = i
	}
	return ok
}

// skipValue returns the end of the valid JSON value that starts at b[i:]
// after white space. It works on a local index (the hot loop of answers
// that echo what was sent), not on the Scanner.
func skipValue(b []byte, i int) (int, bool) {
	var stack uint64 // bit 0: the innermost container is an object
	depth := 0
	ok := true
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch c := b[i]; c {
		case '{', '[':
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' and ']' follow '{' and '[' by two
				i++
				break
			}
			if depth == 64 {
				return i, false
			}
			if c == '[' {
				stack, depth = stack<<1, depth+1
				continue
			}
			if i, ok = skipKey(b, i); !ok {
				return i, false
			}
			stack, depth = stack<<1|1, depth+1
			continue
		case '"':
			i, ok = skipString(b, i)
		case 't':
			i, ok = skipLit(b, i, "true")
		case 'f':
			i, ok = skipLit(b, i, "false")
		case 'n':
			i, ok = skipLit(b, i, "null")
		default:
			i, ok = skipNumber(b, i)
		}
		if !ok {
			return i, false
		}
		// After a value: close containers, or go on to the next element.
		for {
			if depth == 0 {
				return i, true
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, false
			}
			c, obj := b[i], stack&1 == 1
			if c == ',' {
				if obj {
					if i, ok = skipKey(b, i+1); !ok {
						return i, false
					}
				} else {
					i++
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				i++
				stack, depth = stack>>1, depth-1
				continue
			}
			return i, false
		}
	}
}

// skipWS returns the index of the first byte at or after i that is not
// white space.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipLit skips the literal l at b[i:].
func skipLit(b []byte, i int, l string) (int, bool) {
	if len(b)-i < len(l) || string(b[i:i+len(l)]) != l {
		return i, false
	}
	return i + len(l), true
}

// skipKey skips an object member's key and colon, after white space.
func skipKey(b []byte, i int) (int, bool) {
	i, ok := skipString(b, skipWS(b, i))
	if !ok {
		return i, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return i + 1, true
}

// plainASCII marks printable ASCII other than the quote and the
// backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// inString marks the bytes a string holds as they are: all but control
// characters, the quote and the backslash.
var inString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString skips the valid JSON string (escapes checked) at b[i:].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for j := i + 1; j < len(b); j++ {
		for j+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		for j < len(b) && inString[b[j]] {
			j++
		}
		if j >= len(b) {
			return i, false
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			j++
			if j >= len(b) {
				return i, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return i, false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(b[k]) {
						return i, false
					}
				}
				j += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// plainWord reports whether none of the eight bytes of x (a string's,
// little-endian) ends or escapes it, or is a control character: the word
// tricks "has a byte less than n" and "has a zero byte", each exact about
// whether some byte matches. Bytes above ASCII are plain, as in inString.
func plainWord(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	ctl := (x - lo*0x20) &^ x
	quote := (q - lo) &^ q
	back := (bs - lo) &^ bs
	return (ctl|quote|back)&hi == 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber skips the JSON number at b[i:].
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// Object reads an object, calling member for each key (positioned at the
// value); member reads the value or returns false.
func (s *Scanner) Object(member func(k []byte) bool) bool {
	if s.Next() != '{' {
		return false
	}
	s.I++
	if s.Next() == '}' {
		s.I++
		return true
	}
	for {
		k, ok := s.Key()
		if !ok || !member(k) {
			return false
		}
		switch s.Next() {
		case ',':
			s.I++
		case '}':
			s.I++
			return true
		default:
			return false
		}
	}
}

// End reports whether only white space is left.
func (s *Scanner) End() bool { return s.Next() == 0 && s.I == len(s.B) }
