// Package wiretime formats the timestamps of the Prefactor wire protocol
// (UTC, RFC 3339 with a fixed number of fractional digits) without going
// through time.Time.AppendFormat's general layout machinery: the exporter
// writes two per span and the fake server six per answer.
package wiretime

import "time"

// Layouts are the layouts AppendJSON writes, by fractional digits.
var Layouts = map[int]string{3: "2006-01-02T15:04:05.000Z", 6: "2006-01-02T15:04:05.000000Z"}

// AppendJSON appends t in UTC as a JSON string in Layouts[frac] (frac is 3
// or 6; anything else is taken as 6), or null for the zero time.
func AppendJSON(b []byte, t time.Time, frac int) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	if frac != 3 {
		frac = 6
	}
	sec := t.Unix()
	days, rem := sec/86400, sec%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, Layouts[frac])
		return append(b, '"')
	}
	b = append(b, '"')
	b = append4(b, int(y))
	b = append(b, '-')
	b = append2(b, int(m))
	b = append(b, '-')
	b = append2(b, int(d))
	b = append(b, 'T')
	b = append2(b, int(rem/3600))
	b = append(b, ':')
	b = append2(b, int(rem/60%60))
	b = append(b, ':')
	b = append2(b, int(rem%60))
	b = append(b, '.')
	if frac == 3 {
		ms := t.Nanosecond() / 1e6
		b = append(b, byte('0'+ms/100))
		b = append2(b, ms%100)
	} else {
		us := t.Nanosecond() / 1e3
		b = append2(b, us/10000)
		b = append2(b, us/100%100)
		b = append2(b, us%100)
	}
	return append(b, 'Z', '"')
}

// civil converts days since 1970-01-01 to a date (the algorithm of
// Howard Hinnant's days_from_civil, inverted).
func civil(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte { return append2(append2(b, n/100), n%100) }
