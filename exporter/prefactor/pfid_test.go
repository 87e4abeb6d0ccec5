package prefactor_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
)

var pfidRe = regexp.MustCompile(`^[0-7][0-9abcdefghjkmnpqrstvwxyz]{31}$`)

func TestPFIDKnownValues(t *testing.T) {
	// The documentation's example IDs: timestamp 1,234,567,890,000 ms and
	// partition 123,456,789 ("3nqk8n").
	p, err := prefactor.PFIDPartition("013xrzp12g3nqk8ngskn1wtxgka5b0nf")
	require.NoError(t, err)
	require.EqualValues(t, 123456789, p)
	id, p2, err := prefactor.ParsePFID("013xrzp12g3nqk8ngskn1wtxgka5b0nf")
	require.NoError(t, err)
	require.Equal(t, p, p2)
	require.Equal(t, int64(1234567890000), id.Time().UnixMilli())
	require.Equal(t, "013xrzp12g3nqk8ngskn1wtxgka5b0nf", prefactor.PFID(id, p))

	// All zero and all ones.
	require.Equal(t, "0000000000000000zzzzzzzzzzzzzzzz", prefactor.PFID(agenttrace.ID(ulid.ULID{6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff,
		10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}), 0))
	var max agenttrace.ID
	for i := range max {
		max[i] = 0xff
	}
	require.Equal(t, "7zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", prefactor.PFID(max, prefactor.MaxPartition))
}

func TestPFIDRoundTrip(t *testing.T) {
	for i := range 1000 {
		id, err := agenttrace.ParseID(ulid.Make().String())
		require.NoError(t, err)
		part := uint32(i * 1048573 % (prefactor.MaxPartition + 1))
		s := prefactor.PFID(id, part)
		require.Regexp(t, pfidRe, s)
		require.True(t, prefactor.ValidPFID(s))
		got, p, err := prefactor.ParsePFID(s)
		require.NoError(t, err)
		require.Equal(t, id, got)
		require.Equal(t, part, p)
		// Upper case parses but is not canonical.
		got, _, err = prefactor.ParsePFID(strings.ToUpper(s))
		require.NoError(t, err)
		require.Equal(t, id, got)
		require.False(t, prefactor.ValidPFID(strings.ToUpper(s)))
	}
	// PFIDs sort like their IDs: by time.
	a := agenttrace.ID(ulid.MustNew(ulid.Timestamp(time.UnixMilli(1000)), ulid.DefaultEntropy()))
	b := agenttrace.ID(ulid.MustNew(ulid.Timestamp(time.UnixMilli(2000)), ulid.DefaultEntropy()))
	require.Less(t, prefactor.PFID(a, 7), prefactor.PFID(b, 7))
}

func TestPFIDInvalid(t *testing.T) {
	for _, s := range []string{"", "8zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "013xrzp12g3nqk8ngskn1wtxgka5b0n", "013xrzp12g3nqk8ngskn1wtxgka5b0nff",
		"013xrzp12g3nqk8ngskn1wtxgka5b0ni", "013xrzp12g3nqk8ngskn1wtxgka5b0n\xff"} {
		require.False(t, prefactor.ValidPFID(s), s)
		_, err := prefactor.PFIDPartition(s)
		require.ErrorIs(t, err, prefactor.ErrInvalidPFID, s)
		_, _, err = prefactor.ParsePFID(s)
		require.ErrorIs(t, err, prefactor.ErrInvalidPFID, s)
	}
}

func FuzzPFID(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), uint32(5))
	f.Add(make([]byte, 16), uint32(prefactor.MaxPartition))
	f.Fuzz(func(t *testing.T, raw []byte, part uint32) {
		var id agenttrace.ID
		copy(id[:], raw)
		s := prefactor.PFID(id, part)
		if !pfidRe.MatchString(s) || !prefactor.ValidPFID(s) {
			t.Fatalf("invalid PFID %q", s)
		}
		got, p, err := prefactor.ParsePFID(s)
		if err != nil || got != id || p != part&prefactor.MaxPartition {
			t.Fatalf("round trip of %x/%d: %x/%d %v", id, part, got, p, err)
		}
	})
}

func FuzzParsePFID(f *testing.F) {
	f.Add("013xrzp12g3nqk8ngskn1wtxgka5b0nf")
	f.Add("zzz")
	f.Fuzz(func(t *testing.T, s string) {
		id, p, err := prefactor.ParsePFID(s)
		if err != nil {
			return
		}
		if back := prefactor.PFID(id, p); !strings.EqualFold(back, s) {
			t.Fatalf("%q parsed to %x/%d which formats as %q", s, id, p, back)
		}
	})
}
