// Package jsonw writes JSON objects member by member, without reflection:
// the one object writer of the root package's typed payloads and of the
// Prefactor exporter's request bodies. Strings are escaped by jsonesc.
package jsonw

import (
	"math"
	"strconv"
	"time"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// Object appends the members of one JSON object to B, with commas between
// them. Begin writes the opening brace and End the closing one; a writer
// made with Members writes members alone, for a caller that frames them.
// Callers may append a member's value to B themselves after Key.
type Object struct {
	B []byte
	n int
}

// Begin starts an object at the end of b.
func Begin(b []byte) Object { return Object{B: append(b, '{')} }

// Members returns a writer of members appended to b, without braces.
func Members(b []byte) Object { return Object{B: b} }

// End closes the object and returns the bytes.
func (w *Object) End() []byte { return append(w.B, '}') }

// Key starts a member named k, which must be plain ASCII that needs no
// escaping (a constant key).
func (w *Object) Key(k string) {
	if w.n > 0 {
		w.B = append(w.B, ',', '"')
	} else {
		w.B = append(w.B, '"')
	}
	w.n++
	w.B = append(w.B, k...)
	w.B = append(w.B, '"', ':')
}

// AnyKey starts a member named by any string, escaped.
func (w *Object) AnyKey(k string) {
	if w.n > 0 {
		w.B = append(w.B, ',')
	}
	w.n++
	w.B = jsonesc.AppendString(w.B, k)
	w.B = append(w.B, ':')
}

// String writes the member k: v.
func (w *Object) String(k, v string) {
	w.Key(k)
	w.B = jsonesc.AppendString(w.B, v)
}

// NonEmpty writes the member k: v unless v is empty.
func (w *Object) NonEmpty(k, v string) {
	if v != "" {
		w.String(k, v)
	}
}

// Int writes the member k: v.
func (w *Object) Int(k string, v int64) {
	w.Key(k)
	w.B = strconv.AppendInt(w.B, v, 10)
}

// NonZero writes the member k: v unless v is 0.
func (w *Object) NonZero(k string, v int64) {
	if v != 0 {
		w.Int(k, v)
	}
}

// Float writes the member k: v, null for NaN and the infinities.
func (w *Object) Float(k string, v float64) {
	w.Key(k)
	w.B = AppendFloat(w.B, v)
}

// Bool writes the member k: v.
func (w *Object) Bool(k string, v bool) {
	w.Key(k)
	w.B = strconv.AppendBool(w.B, v)
}

// True writes the member k: true if v is set.
func (w *Object) True(k string, v bool) {
	if v {
		w.Bool(k, true)
	}
}

// Time writes the member k: t as AppendTime does.
func (w *Object) Time(k string, t time.Time, frac int) {
	w.Key(k)
	w.B = AppendTime(w.B, t, frac)
}

// AppendFloat appends v as a JSON number, or null for NaN and the
// infinities, which JSON cannot hold.
func AppendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// TimeLayouts are the layouts AppendTime writes, by fractional digits.
var TimeLayouts = map[int]string{3: "2006-01-02T15:04:05.000Z", 6: "2006-01-02T15:04:05.000000Z"}

// AppendTime appends t in UTC as a JSON string in TimeLayouts[frac] (frac
// is 3 or 6; anything else is taken as 6), or null for the zero time: the
// timestamps of the Prefactor wire protocol. It uses the standard
// library's RFC 3339 fast path for the seconds and appends the fraction
// itself.
func AppendTime(b []byte, t time.Time, frac int) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339) // ...T15:04:05Z
	b[len(b)-1] = '.'
	n, div := t.Nanosecond(), int(1e3)
	if frac == 3 {
		div = 1e6
	} else {
		frac = 6
	}
	n /= div
	for i := frac; i > 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-frac; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, 'Z', '"')
}
