package llmhttp

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads one JSON value in place, without building a tree: the
// stream codecs walk each event with it and pick the few members they need,
// so a streamed chunk costs a scan, not a decode. It never panics on bad
// input: it sets bad and returns zero values, and callers drop the event.
type scanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' { // compact JSON: no white space
		return
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) fail() { s.bad = true; s.i = len(s.b) }

// object calls member for each member of the object at the cursor with the
// raw (still escaped) key; member must consume the value (with skip or one
// of the readers). It returns false if no object is there.
func (s *scanner) object(member func(key []byte)) bool {
	if s.peek() != '{' {
		s.fail()
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for !s.bad {
		k, ok := s.rawString()
		if !ok || s.peek() != ':' {
			s.fail()
			return false
		}
		s.i++
		start := s.i
		member(k)
		if s.i == start && !s.bad {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			s.fail()
			return false
		}
	}
	return false
}

// array calls elem for each element of the array at the cursor; elem must
// consume it. A null counts as an empty array.
func (s *scanner) array(elem func(i int)) bool {
	switch s.peek() {
	case 'n':
		s.skip()
		return true
	case '[':
	default:
		s.fail()
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for n := 0; !s.bad; n++ {
		start := s.i
		elem(n)
		if s.i == start && !s.bad {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			s.fail()
			return false
		}
	}
	return false
}

// rawString reads a string and returns its bytes between the quotes, still
// escaped. It looks for the closing quote with bytes.IndexByte (strings are
// most of an event's bytes) and does not validate what is inside.
func (s *scanner) rawString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for {
		k := bytes.IndexByte(s.b[s.i:], '"')
		if k < 0 {
			s.fail()
			return nil, false
		}
		end := s.i + k
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for j := end - 1; j >= start && s.b[j] == '\\'; j-- {
			n++
		}
		s.i = end + 1
		if n%2 == 0 {
			return s.b[start:end], true
		}
	}
}

// str reads a string (or null, as "") as a new Go string.
func (s *scanner) str() string {
	if s.peek() == 'n' {
		s.skip()
		return ""
	}
	raw, ok := s.rawString()
	if !ok {
		s.fail()
		return ""
	}
	for _, c := range raw {
		if c == '\\' {
			return string(unescape(nil, raw))
		}
	}
	return string(raw)
}

// role reads a message's role: the roles of the APIs without an
// allocation, any other as str does.
func (s *scanner) role() string {
	if s.peek() == '"' {
		save := s.i
		if raw, ok := s.rawString(); ok {
			switch string(raw) {
			case "user":
				return "user"
			case "assistant":
				return "assistant"
			case "system":
				return "system"
			case "tool":
				return "tool"
			case "developer":
				return "developer"
			case "model":
				return "model"
			}
		}
		s.i = save
	}
	return s.str()
}

// int reads a number as an int64 (a fraction is cut); null is 0.
func (s *scanner) int() int64 {
	raw := s.number()
	if raw == nil {
		return 0
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0
	}
	return int64(f)
}

// float reads a number as a float64; null is 0.
func (s *scanner) float() float64 {
	raw := s.number()
	if raw == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(raw), 64)
	return f
}

func (s *scanner) number() []byte {
	switch c := s.peek(); {
	case c == 'n':
		s.skip()
		return nil
	case c == '-' || c >= '0' && c <= '9':
	default:
		s.fail()
		return nil
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
		default:
			return s.b[start:s.i]
		}
	}
	return s.b[start:s.i]
}

// raw returns the bytes of the value at the cursor and skips it.
func (s *scanner) raw() []byte {
	s.ws()
	start := s.i
	s.skip()
	if s.bad {
		return nil
	}
	return s.b[start:s.i]
}

// isNull consumes a null and reports whether one was there.
func (s *scanner) isNull() bool {
	if s.peek() == 'n' {
		s.skip()
		return !s.bad
	}
	return false
}

// skip skips one value of any kind.
func (s *scanner) skip() {
	switch c := s.peek(); c {
	case '{':
		s.object(func([]byte) { s.skip() })
	case '[':
		s.array(func(int) { s.skip() })
	case '"':
		if _, ok := s.rawString(); !ok {
			s.fail()
		}
	case 't':
		s.lit("true")
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	default:
		if s.number() == nil {
			s.fail()
		}
	}
}

func (s *scanner) lit(l string) {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		s.fail()
		return
	}
	s.i += len(l)
}

// unescape appends the JSON string body raw, unescaped, to dst. Bad escapes
// are kept as they are; invalid UTF-8 is left for the payload encoder to
// repair.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, n := hex4(raw[i+1:])
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, n2 := hex4(tail(raw, i+3)); n2 > 0 && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ / and anything else
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func tail(b []byte, i int) []byte {
	if i > len(b) {
		return nil
	}
	return b[i:]
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}

// keyIs reports whether the raw key k is name (keys the codecs look for
// have no escapes).
func keyIs(k []byte, name string) bool { return string(k) == name }

// floatPtr reads a number, or null as nil.
func (s *scanner) floatPtr() *float64 {
	if s.isNull() {
		return nil
	}
	raw := s.number()
	if raw == nil {
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		s.fail()
		return nil
	}
	return &f
}

// intPtr reads an integer, or null as nil.
func (s *scanner) intPtr() *int64 {
	if s.isNull() {
		return nil
	}
	raw := s.number()
	if raw == nil {
		return nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		s.fail()
		return nil
	}
	return &n
}

// boolean reads true or false (null is false).
func (s *scanner) boolean() bool {
	switch s.peek() {
	case 't':
		s.lit("true")
		return !s.bad
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	default:
		s.fail()
	}
	return false
}
