package prefactor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// The API has no pending -> active transition: a pending span is created
// when it activates (or pending, then cancelled); its children wait for it.
func TestPendingSpans(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, run := h.tr.StartInstance(context.Background())
	pctx, queued := h.tr.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "queued"})
	_, child := h.tr.Start(pctx, "llm", nil) // a child of a span still pending
	child.End()
	_, never := h.tr.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "never"})
	require.NoError(t, h.tr.Flush(ctx))
	require.Empty(t, h.srv.AllSpans(), "nothing to create yet")

	queued.Activate()
	require.NoError(t, h.tr.Flush(ctx))
	never.Cancel("not needed")
	require.NoError(t, h.tr.Flush(ctx))
	queued.End()
	run.End()
	h.shutdown(t)

	require.NoError(t, h.srv.Validate())
	byID := map[string]prefactortest.Span{}
	for _, s := range h.srv.AllSpans() {
		byID[s.ID] = s
	}
	require.Len(t, byID, 3)
	q := byID[pfid(queued.ID(), h.srv)]
	require.Equal(t, "complete", q.Status)
	require.Equal(t, 1, q.Finishes, "created active, then finished")
	require.Equal(t, queued.Data().StartedAt.UTC().Truncate(1e6), q.StartedAt)
	c := byID[pfid(child.ID(), h.srv)]
	require.Equal(t, q.ID, c.ParentID)
	n := byID[pfid(never.ID(), h.srv)]
	require.Equal(t, "cancelled", n.Status)
	require.Contains(t, string(n.ResultPayload), "not needed")
	require.Zero(t, h.tr.Stats().Failed)
	require.Zero(t, h.exp.Stats().Rejected)
}

func TestSensitiveEncoding(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "llm", nil, agenttrace.WithSensitive(true))
	s.End()
	_, plain := h.tr.Start(ctx, "llm", nil)
	plain.End()
	run.End()
	h.shutdown(t)
	got, ok := h.srv.Span(pfid(s.ID(), h.srv))
	require.True(t, ok)
	require.NotNil(t, got.SensitiveEncoding)
	require.True(t, *got.SensitiveEncoding)
	got, _ = h.srv.Span(pfid(plain.ID(), h.srv))
	require.Nil(t, got.SensitiveEncoding, "omitted when not set")
}

// A 404 on an instance operation is retried (the API may not see a
// just-registered instance yet); on a span operation it drops the record.
func TestNotFoundOnInstanceIsRetried(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.srv.FailNext(prefactortest.EndpointStart, prefactortest.Fault{Status: 404,
		Body: `{"status":"error","code":"not_found","message":"agent instance not found"}`})
	h.srv.FailNext(prefactortest.EndpointBulk, prefactortest.Fault{Status: 200,
		Body: `{"status":"success","outputs":{}}`}) // an answer without our items: sent one by one
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
	s.End()
	run.End()
	h.shutdown(t)
	require.Equal(t, "complete", h.srv.Instances()[0].Status)
	require.Len(t, h.srv.AllSpans(), 1)
	require.Zero(t, h.tr.Stats().Failed)
}

// Chains of pending spans: a pending child of a pending parent activates
// first; its own child waits with it; all land parents first.
func TestPendingChains(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, run := h.tr.StartInstance(context.Background())
	pctx, p := h.tr.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "p"})
	cctx, c := h.tr.StartPending(pctx, "tool", agenttrace.ToolInput{Name: "c"})
	_, g := h.tr.Start(cctx, "llm", nil)
	require.NoError(t, h.tr.Flush(ctx))
	c.Activate() // before its parent
	g.End()
	require.NoError(t, h.tr.Flush(ctx))
	require.Empty(t, h.srv.AllSpans(), "all wait for p")
	_, x := h.tr.StartPending(pctx, "tool", agenttrace.ToolInput{Name: "x"}) // cancelled while p waits
	x.Cancel("skip")
	require.NoError(t, h.tr.Flush(ctx))
	require.Empty(t, h.srv.AllSpans())
	p.Activate()
	require.NoError(t, h.tr.Flush(ctx))
	require.Len(t, h.srv.AllSpans(), 4)
	c.End()
	p.End()
	run.End()
	h.shutdown(t)
	require.NoError(t, h.srv.Validate())
	order := map[string]int{}
	for i, s := range h.srv.AllSpans() {
		order[s.ID] = i
		require.Contains(t, []string{"complete", "cancelled"}, s.Status, s.ID)
	}
	id := func(s *agenttrace.Span) string { return pfid(s.ID(), h.srv) }
	require.Less(t, order[id(p)], order[id(c)])
	require.Less(t, order[id(c)], order[id(g)])
	require.Less(t, order[id(p)], order[id(x)])
	require.Zero(t, h.exp.Stats().Rejected)
	require.NoError(t, h.exp.Shutdown(context.Background()), "nothing left waiting")
}

// A pending span still waiting at Shutdown is reported.
func TestPendingAtShutdownIsReported(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, _ := h.tr.StartInstance(context.Background())
	_, p := h.tr.StartPending(ctx, "tool", nil)
	require.NoError(t, h.tr.Flush(ctx))
	require.EqualValues(t, 1, h.tr.Stats().Exported, "the instance start only: the held span is not counted as exported")
	require.Equal(t, 1, h.tr.Stats().Held)
	err := h.exp.Shutdown(context.Background())
	require.ErrorContains(t, err, "1 pending spans")
	require.Zero(t, h.tr.Stats().Held)
	require.EqualValues(t, 1, h.tr.Stats().Failed, "the pending span's record failed, in the tracer's counts")
	require.ErrorContains(t, h.tr.Flush(context.Background()), "still pending at shutdown")
	p.End()
	_, s := h.tr.Start(ctx, "tool", nil)
	s.End()
	require.ErrorIs(t, h.tr.Flush(context.Background()), prefactor.ErrShutdown, "nothing is sent after Shutdown")
}
