// Package wiretime formats the timestamps of the Prefactor wire protocol:
// UTC, RFC 3339 with a fixed number of fractional digits.
package wiretime

import "time"

// Layouts are the layouts AppendJSON writes, by fractional digits.
var Layouts = map[int]string{3: "2006-01-02T15:04:05.000Z", 6: "2006-01-02T15:04:05.000000Z"}

// AppendJSON appends t in UTC as a JSON string in Layouts[frac] (frac is 3
// or 6; anything else is taken as 6), or null for the zero time. It uses
// the standard library's RFC 3339 fast path for the seconds and appends the
// fraction itself.
func AppendJSON(b []byte, t time.Time, frac int) []byte {
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
