package agenttrace_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

type tpKey struct{}

func TestParentExtractor(t *testing.T) {
	extract := func(ctx context.Context) (agenttrace.TraceParent, bool) {
		switch v := ctx.Value(tpKey{}).(type) {
		case agenttrace.TraceParent:
			return v, true
		case string:
			panic(v)
		}
		return agenttrace.TraceParent{}, false
	}
	tr, rec := newTracer(t, agenttrace.WithParentExtractor(extract))
	tp := agenttrace.TraceParent{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Flags: 1}
	require.Equal(t, "00-01020300000000000000000000000000-0405000000000000-01", tp.String())
	require.True(t, tp.IsValid())
	require.False(t, agenttrace.TraceParent{TraceID: [16]byte{1}}.IsValid())

	outer := context.WithValue(context.Background(), tpKey{}, tp)
	ctx, inst := tr.StartInstance(outer)
	require.Equal(t, &tp, inst.Data().TraceParent)
	_, s := tr.Start(ctx, "llm", nil)
	require.Equal(t, &tp, s.Data().TraceParent)
	_, p := tr.StartPending(ctx, "tool", nil)
	require.Equal(t, &tp, p.Data().TraceParent)
	p.Cancel("x")

	_, plain := tr.Start(context.Background(), "llm", nil)
	require.Nil(t, plain.Data().TraceParent, "nothing to capture")
	_, invalid := tr.Start(context.WithValue(context.Background(), tpKey{}, agenttrace.TraceParent{}), "llm", nil)
	require.Nil(t, invalid.Data().TraceParent, "an invalid context is not captured")
	_, boom := tr.Start(context.WithValue(context.Background(), tpKey{}, "extractor bug"), "llm", nil)
	require.Nil(t, boom.Data().TraceParent)
	require.EqualValues(t, 1, tr.Stats().HookPanics)
	for _, sp := range []*agenttrace.Span{s, plain, invalid, boom} {
		sp.End()
	}
	inst.End()
	flush(t, tr)

	got, ok := rec.Span(s.ID())
	require.True(t, ok)
	require.Equal(t, &tp, got.TraceParent, "exporters see it")
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.Contains(t, string(b), `"trace_parent":"00-0102030000`)
}

func TestNoExtractorCapturesNothing(t *testing.T) {
	tr, _ := newTracer(t)
	ctx, inst := tr.StartInstance(context.WithValue(context.Background(), tpKey{}, agenttrace.TraceParent{TraceID: [16]byte{1}, SpanID: [8]byte{1}}))
	_, s := tr.Start(ctx, "llm", nil)
	require.Nil(t, s.Data().TraceParent)
	require.Nil(t, inst.Data().TraceParent)
	s.End()
	inst.End()
}
