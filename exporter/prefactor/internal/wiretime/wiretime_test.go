package wiretime_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor/internal/wiretime"
)

// AppendJSON writes what time.Format writes, for both layouts.
func TestAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for frac, layout := range wiretime.Layouts {
		require.Equal(t, "null", string(wiretime.AppendJSON(nil, time.Time{}, frac)))
		for _, tm := range []time.Time{
			time.Unix(0, 0), time.Unix(-1, 999_999_999), time.Date(2000, 2, 29, 23, 59, 59, 123456789, time.UTC),
			time.Date(2026, 12, 31, 1, 2, 3, 4000, time.FixedZone("x", 3600)), time.Date(1600, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		} {
			require.Equal(t, `"`+tm.UTC().Format(layout)+`"`, string(wiretime.AppendJSON(nil, tm, frac)), tm.String())
		}
		for range 100_000 {
			tm := time.Unix(r.Int64N(400*365*86400)-200*365*86400, r.Int64N(1e9))
			require.Equal(t, `"`+tm.UTC().Format(layout)+`"`, string(wiretime.AppendJSON([]byte("x"), tm, frac))[1:])
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	tm := time.Date(2026, 11, 23, 6, 50, 43, 123456789, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("wiretime", func(b *testing.B) {
		for range b.N {
			buf = wiretime.AppendJSON(buf[:0], tm, 3)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for range b.N {
			buf = append(tm.UTC().AppendFormat(append(buf[:0], '"'), wiretime.Layouts[3]), '"')
		}
	})
}
