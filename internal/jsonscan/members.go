package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Members walks the members of a JSON object already known to be valid,
// such as a record's payload (agenttrace validates every payload it
// records): it finds where each value ends without checking what it
// holds, eight bytes at a time through short strings and with
// bytes.IndexByte through long ones. The bridge reads the request and the
// result of every LLM span this way to pick a few fields, most of them
// past the messages: on a 4 KB payload of chat messages Members runs at
// 2.0-2.2 GB/s where Scanner's checked Object and Raw run at 1.1-1.4
// (BenchmarkMembers). In BenchmarkBridge/bridge-large, reading the 6 KB
// request takes about 3 us (in a micro-benchmark the checked scanner took
// 4.5-5 us on a 3.7 KB one).
//
// On input that is not valid JSON, Members stops early or returns wrong
// spans, never reads out of bounds and never loops: each Next moves
// forward.
//
//	for m := jsonscan.NewMembers(b); m.Next(); {
//		use(m.Key, m.Value)
//	}
type Members struct {
	b []byte
	i int // where the next member starts; -1 when done
	// Key is the current member's key, between its quotes and with its
	// escapes (if any) as they are.
	Key []byte
	// Value is the current member's value, as its bytes.
	Value []byte
}

// NewMembers returns a walk of the members of the object b.
func NewMembers(b []byte) Members {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Members{i: -1}
	}
	return Members{b: b, i: i + 1}
}

// Next moves to the next member, reporting false at the object's end
// (or at anything it cannot follow).
func (m *Members) Next() bool {
	if m.i < 0 {
		return false
	}
	b := m.b
	i := skipWS(b, m.i)
	if i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		m.i = -1
		return false
	}
	end := stringEnd(b, i)
	if end < 0 {
		m.i = -1
		return false
	}
	m.Key = b[i+1 : end-1]
	i = skipWS(b, end)
	if i >= len(b) || b[i] != ':' {
		m.i = -1
		return false
	}
	i = skipWS(b, i+1)
	end = valueEnd(b, i)
	if end <= i {
		m.i = -1
		return false
	}
	m.Value = b[i:end]
	m.i = end
	return true
}

// stringEnd returns the index just past the string that starts with the
// quote at b[i], or -1 if it does not end.
func stringEnd(b []byte, i int) int {
	// Eight bytes at a time up to the first quote or backslash (most
	// strings of a payload are short: keys, roles, models), then, in a
	// long string, IndexByte.
	j := i + 1
	for limit := j + longString; j+8 <= len(b); {
		m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
		if m == 0 {
			j += 8
			if j >= limit {
				return longStringEnd(b, i, j)
			}
			continue
		}
		j += bits.TrailingZeros64(m) / 8
		if b[j] == '"' {
			return j + 1
		}
		j += 2 // the backslash and what it escapes
	}
	for ; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// longString is how far into a string stringEnd reads words before it
// looks for the closing quote with IndexByte.
const longString = 64

// quoteOrBackslash returns x (eight bytes of a string, little-endian) with
// the high bit set of its first byte that is a quote or a backslash, and
// zero if none is; bytes past the first may be marked too.
func quoteOrBackslash(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	return ((q-lo)&^q | (bs-lo)&^bs) & hi
}

// longStringEnd is stringEnd for the string that starts at b[i], past
// b[j] (which is not inside an escape).
func longStringEnd(b []byte, i, j int) int {
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		// The quote ends the string unless an odd run of backslashes
		// escapes it. Each run is counted once, by the quote after it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// valueEnd returns the index just past the value that starts at b[i], or
// -1 (or i) if there is none.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
