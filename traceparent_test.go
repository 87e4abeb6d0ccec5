package agenttrace_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
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

func TestWithTraceParent(t *testing.T) {
	captured := agenttrace.TraceParent{TraceID: [16]byte{1}, SpanID: [8]byte{1}, Flags: 1}
	given := agenttrace.TraceParent{TraceID: [16]byte{2}, SpanID: [8]byte{2}}
	tr, rec := newTracer(t, agenttrace.WithParentExtractor(func(context.Context) (agenttrace.TraceParent, bool) {
		return captured, true
	}))

	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithTraceParent(given))
	require.Equal(t, &given, inst.Data().TraceParent, "the given parent wins over the captured one")
	_, s := tr.Start(ctx, "llm", nil)
	require.Equal(t, &captured, s.Data().TraceParent, "spans still capture theirs")
	s.End()
	inst.End()

	_, inst2 := tr.StartInstance(context.Background(), agenttrace.WithTraceParent(agenttrace.TraceParent{}))
	require.Equal(t, &captured, inst2.Data().TraceParent, "an invalid one is ignored")
	inst2.End()

	plain, _ := newTracer(t)
	_, inst3 := plain.StartInstance(context.Background(), agenttrace.WithTraceParent(given))
	require.Equal(t, &given, inst3.Data().TraceParent, "no extractor needed")
	inst3.End()
	flush(t, plain)

	flush(t, tr)
	insts := rec.Instances()
	require.Len(t, insts, 2)
	require.Equal(t, &given, insts[0].TraceParent, "exporters see it")
}

// The extractor runs concurrently on every start; the default instance,
// started by no caller, captures nothing.
func TestParentExtractorConcurrent(t *testing.T) {
	var calls atomic.Int64
	tr, rec := newTracer(t, agenttrace.WithParentExtractor(func(ctx context.Context) (agenttrace.TraceParent, bool) {
		calls.Add(1)
		tp, ok := ctx.Value(tpKey{}).(agenttrace.TraceParent)
		return tp, ok
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			tp := agenttrace.TraceParent{TraceID: [16]byte{byte(g + 1)}, SpanID: [8]byte{byte(g + 1)}}
			ctx := context.WithValue(context.Background(), tpKey{}, tp)
			for range 50 {
				_, s := tr.Start(ctx, "tool", nil)
				if got := s.Data().TraceParent; got == nil || *got != tp {
					t.Errorf("captured %v, want %v", got, tp)
				}
				s.End()
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 8*50, calls.Load())
	flush(t, tr)
	insts := rec.Instances()
	require.Len(t, insts, 1)
	require.True(t, insts[0].Default)
	require.Nil(t, insts[0].TraceParent)
}

func TestSpanDataIsLLM(t *testing.T) {
	for typ, want := range map[string]bool{"llm": true, "acme:llm": true, "tool": false, "llm-judge": false, "": false} {
		d := agenttrace.SpanData{Type: typ}
		require.Equal(t, want, d.IsLLM(), typ)
	}
}
