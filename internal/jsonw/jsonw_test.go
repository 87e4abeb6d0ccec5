package jsonw_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/jsonw"
)

// Every member kind, the omitted ones left out, in a nested object: the
// output decodes with encoding/json to the members written.
func TestObject(t *testing.T) {
	w := jsonw.Begin([]byte("x"))
	w.String("s", "a\"b\n\xff")
	w.NonEmpty("skipped", "")
	w.NonEmpty("ne", "v")
	w.Int("i", -7)
	w.NonZero("zero", 0)
	w.NonZero("nz", 3)
	w.Float("f", 1.5)
	w.Float("nan", math.NaN())
	w.Bool("b", false)
	w.True("off", false)
	w.True("on", true)
	w.AnyKey("k\"ey")
	inner := jsonw.Begin(w.B)
	inner.Time("t", time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC), 3)
	inner.Time("zero", time.Time{}, 6)
	w.B = inner.End()
	out := w.End()
	require.Equal(t, byte('x'), out[0])
	var got map[string]any
	require.NoError(t, json.Unmarshal(out[1:], &got), string(out))
	require.Equal(t, map[string]any{
		"s": "a\"b\n\ufffd", "ne": "v", "i": -7.0, "nz": 3.0, "f": 1.5, "nan": nil, "b": false, "on": true,
		"k\"ey": map[string]any{"t": "2026-01-02T03:04:05.006Z", "zero": nil},
	}, got)

	m := jsonw.Members(nil)
	require.Empty(t, m.B)
	m.Int("a", 1)
	m.String("b", "c")
	require.Equal(t, `"a":1,"b":"c"`, string(m.B))
	e := jsonw.Begin(nil)
	require.Equal(t, `{}`, string(e.End()))
}

// AppendTime writes what time.Format writes, for both layouts.
func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for frac, layout := range jsonw.TimeLayouts {
		require.Equal(t, "null", string(jsonw.AppendTime(nil, time.Time{}, frac)))
		for _, tm := range []time.Time{
			time.Unix(0, 0), time.Unix(-1, 999_999_999), time.Date(2000, 2, 29, 23, 59, 59, 123456789, time.UTC),
			time.Date(2026, 12, 31, 1, 2, 3, 4000, time.FixedZone("x", 3600)), time.Date(1600, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		} {
			require.Equal(t, `"`+tm.UTC().Format(layout)+`"`, string(jsonw.AppendTime(nil, tm, frac)), tm.String())
		}
		for range 100_000 {
			tm := time.Unix(r.Int64N(400*365*86400)-200*365*86400, r.Int64N(1e9))
			require.Equal(t, `"`+tm.UTC().Format(layout)+`"`, string(jsonw.AppendTime([]byte("x"), tm, frac))[1:])
		}
	}
	require.Equal(t, `"1970-01-01T00:00:00.000000Z"`, string(jsonw.AppendTime(nil, time.Unix(0, 0), 9)), "frac other than 3 is 6")
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 11, 23, 6, 50, 43, 123456789, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("AppendTime", func(b *testing.B) {
		for b.Loop() {
			buf = jsonw.AppendTime(buf[:0], tm, 3)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = append(tm.UTC().AppendFormat(append(buf[:0], '"'), jsonw.TimeLayouts[3]), '"')
		}
	})
}
