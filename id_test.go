package agenttrace_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func TestIDRoundTrip(t *testing.T) {
	tr, _ := newTracer(t)
	_, s := tr.Start(context.Background(), "tool", nil)
	s.End()
	id := s.ID()
	require.False(t, id.IsZero())
	str := id.String()
	require.Len(t, str, 26)
	require.Equal(t, id.ULID().String(), str)

	back, err := agenttrace.ParseID(str)
	require.NoError(t, err)
	require.Equal(t, id, back)
	back, err = agenttrace.ParseID(strings.ToLower(str))
	require.NoError(t, err, "ULIDs are case-insensitive")
	require.Equal(t, id, back)

	text, err := id.MarshalText()
	require.NoError(t, err)
	require.Equal(t, str, string(text))
	var u agenttrace.ID
	require.NoError(t, u.UnmarshalText(text))
	require.Equal(t, id, u)

	// As JSON, in a struct, and the zero ID as "".
	type doc struct {
		ID     agenttrace.ID `json:"id"`
		Parent agenttrace.ID `json:"parent"`
	}
	b, err := json.Marshal(doc{ID: id})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+str+`","parent":""}`, string(b))
	var d doc
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, doc{ID: id}, d)

	for _, bad := range []string{"not-an-id", str[:25], str + "0", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "ILOU0000000000000000000000"} {
		_, err = agenttrace.ParseID(bad)
		require.Error(t, err, bad)
	}
}

func TestZeroID(t *testing.T) {
	var z agenttrace.ID
	require.True(t, z.IsZero())
	require.Empty(t, z.String())
	text, err := z.MarshalText()
	require.NoError(t, err)
	require.Empty(t, text)
	got, err := agenttrace.ParseID("")
	require.NoError(t, err)
	require.True(t, got.IsZero())
	id := agenttrace.ID{1}
	require.NoError(t, id.UnmarshalText(nil))
	require.True(t, id.IsZero(), "empty text resets to the zero ID")
	require.False(t, agenttrace.ID{15: 1}.IsZero())
}

func TestIDTimeOrdering(t *testing.T) {
	clock := newFakeClock()
	tr, _ := newTracer(t, agenttrace.WithClock(clock.Now))
	var ids []agenttrace.ID
	var strs []string
	for range 50 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
		ids = append(ids, s.ID())
		strs = append(strs, s.ID().String())
		require.Equal(t, clock.Now().UnixMilli(), s.ID().Time().UnixMilli())
		require.Equal(t, clock.Now().Truncate(time.Millisecond), s.ID().Time().UTC())
		clock.Advance(time.Millisecond)
	}
	require.True(t, slices.IsSortedFunc(ids, func(a, b agenttrace.ID) int { return slices.Compare(a[:], b[:]) }))
	require.True(t, slices.IsSorted(strs), "the text form sorts like the bytes")
	require.Equal(t, ulid.Timestamp(clock.Now().Add(-time.Millisecond)), ids[49].ULID().Time())

	// IDs made in the same millisecond are distinct.
	seen := map[agenttrace.ID]bool{}
	for range 1000 {
		_, s := tr.Start(context.Background(), "tool", nil)
		s.End()
		require.False(t, seen[s.ID()])
		seen[s.ID()] = true
	}
}
