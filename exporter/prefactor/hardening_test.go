package prefactor_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// Shutdown with context.Background() against a dead server returns once
// every operation reached its retry deadline, says why it waits, and says
// what was lost. GaveUp counts the deadline give-ups only; what depended
// on them is Skipped.
func TestShutdownAgainstDeadServerIsBounded(t *testing.T) {
	logs := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	h := newHarness(t, nil, []prefactor.Option{prefactor.WithRetry(prefactor.Retry{Initial: 10 * time.Millisecond,
		Max: 100 * time.Millisecond, Deadline: 3 * time.Second, AttemptTimeout: time.Second})})
	h.srv.SetDown(true)
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "llm", nil)
	s.End()
	run.End()
	start := time.Now()
	err := h.tr.Shutdown(context.Background())
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 2*time.Second, "it waited for the retry deadline")
	require.Less(t, took, 30*time.Second, "bounded by the deadline, not by the queue or a timeout")
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, err, &de)
	require.Contains(t, de.LastError, "gave up")
	require.Contains(t, logs.String(), "shutdown is waiting", "the tracer says why it waits (through slog.Default)")
	st := h.tr.Stats()
	require.Zero(t, st.Queued)
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total())
	es := h.exp.Stats()
	require.NotZero(t, es.GaveUp)
	require.EqualValues(t, 4, es.GaveUp+es.Skipped, "register, start, create, finish: each counted once")
}

// An instance that ends is exported at once, not at the next flush tick:
// with an hour-long flush interval and no Flush, it reaches the server.
func TestInstanceEndExportsPromptly(t *testing.T) {
	h := newHarness(t, nil, nil) // the harness flushes once an hour
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
	s.End()
	run.End()
	require.Eventually(t, func() bool {
		in, ok := h.srv.Instance(pfid(run.ID(), h.srv))
		return ok && in.Status == "complete" && len(h.srv.Spans(in.ID)) == 1
	}, 30*time.Second, 5*time.Millisecond)
	h.shutdown(t)
}

// The token never leaves the exporter: not in an API error message that
// echoes the Authorization header, not in Stats, logs, the error handler or
// the tracer's LastError.
func TestTokenScrubbedFromEchoedHeaders(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(prefactor.ModeSingle)})
	tok := h.srv.Token()
	echo := fmt.Sprintf(`{"status":"error","code":"bad_request","message":"rejected request with headers Authorization: Bearer %s"}`, tok)
	h.srv.FailNext(prefactortest.EndpointCreateSpan, prefactortest.Fault{Status: 422, Body: echo})
	h.srv.FailNext(prefactortest.EndpointFinishInstance, prefactortest.Fault{Status: 502, Body: "upstream said: " + tok})
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
	s.End()
	run.End()
	err := h.tr.Shutdown(context.Background())
	require.Error(t, err)
	require.NotContains(t, err.Error(), tok)
	require.Contains(t, h.tr.Stats().LastError, "[token]", "scrubbed, not dropped")
	h.noSecret(t)
	var api *prefactor.APIError
	require.ErrorAs(t, h.errs.all()[0], &api)
	require.NotContains(t, api.Message, tok)
}

// A token in the URL's user information is never printed.
func TestTokenInURLNotPrinted(t *testing.T) {
	clearEnv(t)
	const secret = "sk-live-0123456789abcdef"
	exp, err := prefactor.New(prefactor.WithURL("https://user:"+secret+"@api.example.test/base"), prefactor.WithToken(secret))
	require.NoError(t, err)
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, exp)
		require.NotContains(t, out, secret, f)
		require.Contains(t, out, "api.example.test", f)
	}
	require.NoError(t, exp.Shutdown(context.Background()))

	_, err = prefactor.New(prefactor.WithURL("https://u:"+secret+"@host/%zz"), prefactor.WithToken(secret))
	require.ErrorIs(t, err, prefactor.ErrConfig)
	require.NotContains(t, err.Error(), secret)
}

// Records held for a pending ancestor are bounded by the tracer's queue and
// counted; a later rejection of one of them counts in the tracer.
func TestHeldRecordsAreBoundedAndCounted(t *testing.T) {
	h := newHarness(t, nil, nil, agenttrace.WithQueueLimits(64, 64<<20))
	ctx, run := h.tr.StartInstance(context.Background())
	var pending []*agenttrace.Span
	for range 200 {
		_, p := h.tr.StartPending(ctx, "tool", nil)
		pending = append(pending, p)
	}
	require.NoError(t, h.tr.Flush(context.Background()))
	st := h.tr.Stats()
	require.LessOrEqual(t, st.Held, 64, "held records stay within the queue limit")
	require.NotZero(t, st.Held)
	require.NotZero(t, st.Dropped.QueueFull, "beyond it they are dropped, counted")
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total()+uint64(st.Queued))

	// Held records use queue room: ends get the eighth kept for them, so
	// they go through when they come at the pace the queue drains.
	for i, p := range pending {
		p.Cancel("not needed")
		if i%4 == 3 {
			require.NoError(t, h.tr.Flush(context.Background()))
		}
	}
	require.NoError(t, h.tr.Flush(context.Background()))
	require.Zero(t, h.tr.Stats().Held)

	// One pending span of an unknown type: held, then rejected when it
	// activates; the tracer counts it failed.
	pctx, bad := h.tr.StartPending(ctx, "mystery", nil)
	_, child := h.tr.Start(pctx, "tool", nil)
	child.End()
	require.NoError(t, h.tr.Flush(context.Background()))
	require.Equal(t, 2, h.tr.Stats().Held)
	failed := h.tr.Stats().Failed
	bad.Activate()
	bad.End()
	err := h.tr.Flush(context.Background())
	var api *prefactor.APIError
	require.ErrorAs(t, err, &api)
	st = h.tr.Stats()
	require.Zero(t, st.Held)
	require.Equal(t, failed+4, st.Failed, "the rejected create (the start and activation records), its skipped finish and child, in the tracer's counts")
	run.End()
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, h.tr.Shutdown(context.Background()), &de)
	require.True(t, strings.Contains(de.Error(), "failed"))
}
