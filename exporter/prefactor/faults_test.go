package prefactor_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// spanRecords counts the span records the server accepted: a create, and a
// finish when the span was created unfinished.
func spanRecords(srv *prefactortest.Server) (n int) {
	for _, s := range srv.AllSpans() {
		n += s.Creates + s.Finishes
	}
	return n
}

// An outage, then recovery: what fits in the queue is delivered; beyond
// that, every drop is counted exactly.
func TestOutageThenRecovery(t *testing.T) {
	const queue = 400
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(prefactor.ModeBulk)},
		agenttrace.WithQueueLimits(queue, 64<<20), agenttrace.WithFlushInterval(10*time.Millisecond))
	ctx, run := h.tr.StartInstance(context.Background())
	// The instance goes through before the outage.
	require.NoError(t, h.tr.Flush(ctx))

	h.srv.SetDown(true)
	const n = 1500
	for i := range n {
		_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t", CallID: string(rune('a' + i%26))})
		s.End()
	}
	require.Eventually(t, func() bool { return h.exp.Stats().BreakerOpen }, 10*time.Second, 5*time.Millisecond,
		"the breaker opens")
	down := h.exp.Stats().Requests
	time.Sleep(200 * time.Millisecond)
	require.Less(t, h.exp.Stats().Requests-down, uint64(60), "an open breaker sends only probes (one per cooldown)")
	h.srv.SetDown(false)
	run.End()
	err := h.tr.Shutdown(context.Background())
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, err, &de, "Shutdown says what was not delivered")

	require.NoError(t, h.srv.Validate())
	st := h.tr.Stats()
	e := st.Exporters[0]
	require.Equal(t, e.Dropped, de.Dropped)
	require.Zero(t, de.Failed)
	require.Zero(t, e.Failed, "nothing accepted into the queue was lost")
	require.NotZero(t, e.Dropped.QueueFull, "more than the queue holds was recorded")
	require.Equal(t, e.Recorded, e.Exported+e.Coalesced+e.Dropped.Total())
	// Exactness: every exported span record is on the server; the rest were
	// counted as dropped.
	require.EqualValues(t, e.Exported-2, spanRecords(h.srv), "exported = instance start and end + span records on the server")
	require.Equal(t, "complete", h.srv.Instances()[0].Status)
	require.NotZero(t, h.exp.Stats().BreakerOpens)
}

// A rejected token stops the exporter with one clear error; recording goes
// on and every record is counted.
func TestUnauthorizedAtStart(t *testing.T) {
	h := newHarness(t, []prefactortest.Option{prefactortest.WithToken("the-right-token-123")}, nil)
	// newHarness used srv.Token(), which is right: make it wrong.
	h2exp, err := prefactor.New(append([]prefactor.Option{prefactor.WithURL(h.srv.URL), prefactor.WithToken("wrong-token-456"),
		prefactor.WithErrorHandler(h.errs.add)}, fastRetry...)...)
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(h2exp), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	for range 3 {
		ctx, run := tr.StartInstance(context.Background())
		_, s := tr.Start(ctx, "llm", nil)
		s.End()
		run.End()
		err := tr.Flush(context.Background())
		require.ErrorIs(t, err, prefactor.ErrUnauthorized)
		require.ErrorIs(t, err, prefactor.ErrStopped)
		require.NotContains(t, err.Error(), "wrong-token-456")
	}
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, tr.Shutdown(context.Background()), &de)
	require.Contains(t, de.LastError, "token rejected")
	require.NotContains(t, de.Error(), "wrong-token-456")
	es := h2exp.Stats()
	require.Contains(t, es.Stopped, "token rejected")
	require.NotContains(t, es.Stopped, "wrong-token-456")
	require.Len(t, h.errs.all(), 1, "one error, once")
	st := tr.Stats()
	require.Equal(t, st.Recorded, st.Failed+st.Coalesced, "every record counted as failed")
	pings := 0
	for _, r := range h.srv.Requests() {
		require.Equal(t, http.StatusUnauthorized, r.Status)
		pings++
	}
	require.Equal(t, 1, pings, "no request after the token was rejected")
}

// One record the API refuses is dropped, counted and logged; the rest flows
// on, in bulk and single mode.
func TestOneRejectedRecord(t *testing.T) {
	for _, mode := range []prefactor.Mode{prefactor.ModeBulk, prefactor.ModeSingle} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(mode)})
			ctx, run := h.tr.StartInstance(context.Background())
			_, a := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "a"})
			a.End()
			// An unregistered span type: the API answers 422.
			mctx, bad := h.tr.Start(ctx, "mystery", nil)
			_, child := h.tr.Start(mctx, "tool", agenttrace.ToolInput{Name: "child"})
			err := h.tr.Flush(ctx) // starts only
			var apiErr *prefactor.APIError
			require.ErrorAs(t, err, &apiErr, "Flush reports the refusal")
			var partial *agenttrace.PartialError
			require.ErrorAs(t, err, &partial)
			child.End()
			bad.End()
			_, b := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "b"})
			b.End()
			run.End()
			_ = h.tr.Shutdown(context.Background())

			require.NoError(t, h.srv.Validate())
			names := map[string]bool{}
			for _, s := range h.srv.AllSpans() {
				names[s.SchemaName+":"+string(s.Payload)] = true
			}
			require.Len(t, h.srv.AllSpans(), 2, "a and b")
			require.Equal(t, "complete", h.srv.Instances()[0].Status)
			es := h.exp.Stats()
			require.EqualValues(t, 1, es.Rejected)
			require.EqualValues(t, 1, es.Skipped, "the child of the rejected span")
			require.Zero(t, es.GaveUp, "no deadline passed")
			require.Contains(t, h.errs.all()[0].Error(), "validation_errors")
			require.Contains(t, es.LastError, "skipped", "its child was not sent without it")
			require.Contains(t, es.LastError, "validation_errors", "the skip says what lost its parent")
			skip := h.errs.all()[len(h.errs.all())-1]
			require.ErrorAs(t, skip, &apiErr, "the skip wraps the parent's refusal")
			st := h.tr.Stats().Exporters[0]
			require.NotZero(t, st.Failed)
			require.Equal(t, st.Recorded, st.Exported+st.Coalesced+st.Failed+st.Dropped.Total())
			require.Contains(t, h.logs.String(), "record not delivered")
			require.True(t, errors.As(h.errs.all()[0], &apiErr))
			require.Equal(t, "agent_spans/create", apiErr.Op)
		})
	}
}

func TestTerminationMidRun(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithPollInterval(-1)})
	ctx, run := h.tr.StartInstance(context.Background())
	other, run2 := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "llm", nil)
	require.NoError(t, h.tr.Flush(ctx))
	require.NoError(t, ctx.Err())
	require.NoError(t, h.srv.Terminate(pfid(run.ID(), h.srv), "budget exceeded"))

	s.End() // its finish answer carries the control signal
	require.NoError(t, h.tr.Flush(context.Background()))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not terminated")
	}
	require.ErrorIs(t, context.Cause(ctx), agenttrace.ErrTerminated)
	require.Contains(t, context.Cause(ctx).Error(), "budget exceeded")
	require.NoError(t, other.Err(), "other runs are untouched")
	run.Fail(context.Cause(ctx)) // the API answers 409: finished already
	run2.End()
	h.shutdown(t)
	require.EqualValues(t, 1, h.exp.Stats().Terminations)
	require.Zero(t, h.exp.Stats().Rejected)
	require.Zero(t, h.tr.Stats().Failed)
	in, ok := h.srv.Instance(pfid(run.ID(), h.srv))
	require.True(t, ok)
	require.Equal(t, "terminated", in.Status)
}

func TestTerminationByPoll(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithPollInterval(20 * time.Millisecond)})
	ctx, run := h.tr.StartInstance(context.Background())
	require.NoError(t, h.tr.Flush(ctx))
	require.NoError(t, h.srv.Terminate(pfid(run.ID(), h.srv), "operator stop"))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not see the termination")
	}
	var te *agenttrace.TerminatedError
	require.ErrorAs(t, context.Cause(ctx), &te)
	require.Equal(t, "operator stop", te.Reason)

	// A finished run is never hit by a stale signal: it ended here before
	// the server terminated it (its finish then meets a 409: success).
	ctx2, run2 := h.tr.StartInstance(context.Background())
	require.NoError(t, h.tr.Flush(ctx2))
	run2.End()
	require.NoError(t, h.srv.Terminate(pfid(run2.ID(), h.srv), "late"))
	time.Sleep(100 * time.Millisecond) // polls see it terminated
	require.NoError(t, h.tr.Flush(ctx2))
	require.NoError(t, ctx2.Err())
	require.Nil(t, run2.Terminated())
	run.End()
	h.shutdown(t)
	require.NotZero(t, h.exp.Stats().Polls)
}

// Shutdown against a server that hangs returns by its deadline and says
// what was not sent.
func TestShutdownDeadlineHungServer(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithRetry(prefactor.Retry{Initial: time.Millisecond,
		Max: 10 * time.Millisecond, Deadline: time.Minute, AttemptTimeout: 10 * time.Second})})
	h.srv.SetLatency(time.Hour)
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "llm", nil)
	s.End()
	run.End()
	sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.tr.Shutdown(sctx)
	require.Error(t, err)
	require.Less(t, time.Since(start), 30*time.Second, "only bounds a hang: Shutdown returns about when its context ends")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Eventually(t, func() bool { // the worker settles its accounts just after
		st := h.tr.Stats()
		return st.Recorded == st.Exported+st.Coalesced+st.Failed+st.Dropped.Total()
	}, 5*time.Second, 10*time.Millisecond)
	st := h.tr.Stats()
	require.NotZero(t, st.Failed+st.Dropped.Total(), "what was not sent is reported")
	require.Zero(t, st.Exported)
	h.srv.SetLatency(0)
}

// Garbage answers are retried under the same idempotency key; each span
// still lands exactly once.
func TestGarbageAnswers(t *testing.T) {
	for _, mode := range []prefactor.Mode{prefactor.ModeBulk, prefactor.ModeSingle} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(mode)})
			faults := []prefactortest.Fault{
				{Status: 200, Body: "not json at all"},
				{Status: 502, Body: "<html><body>Bad Gateway</body></html>", ContentType: "text/html"},
				{Status: 200, Body: `{"status":"success","deta`},
				{Drop: true, AfterProcessing: true},
				{Status: 503, RetryAfter: time.Second},
			}
			ep := prefactortest.EndpointBulk
			if mode == prefactor.ModeSingle {
				ep = prefactortest.EndpointCreateSpan
			}
			h.srv.FailNext(ep, faults...)
			ctx, run := h.tr.StartInstance(context.Background())
			for range 5 {
				_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
				s.End()
			}
			run.End()
			h.shutdown(t)
			require.NoError(t, h.srv.Validate())
			require.Len(t, h.srv.AllSpans(), 5)
			for _, s := range h.srv.AllSpans() {
				require.Equal(t, 1, s.Creates)
			}
			require.Zero(t, h.tr.Stats().Failed)
			require.GreaterOrEqual(t, h.exp.Stats().Retries, uint64(len(faults)))
			replayed := 0
			for _, r := range h.srv.Requests() {
				if r.Replayed {
					replayed++
				}
			}
			require.NotZero(t, replayed, "the retry after a lost answer was an idempotent replay")
		})
	}
}

// Without a bulk endpoint, ModeAuto falls back to single requests.
func TestBulkFallback(t *testing.T) {
	h := newHarness(t, []prefactortest.Option{prefactortest.WithoutBulk()}, nil)
	ctx, run := h.tr.StartInstance(context.Background())
	for range 3 {
		_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
		s.End()
	}
	run.End()
	h.shutdown(t)
	require.Len(t, h.srv.AllSpans(), 3)
	require.False(t, h.exp.Stats().Bulk)
	require.Zero(t, h.tr.Stats().Failed)
	require.Contains(t, h.logs.String(), "no bulk endpoint")
}

// A deployment-scoped token: no agent or environment ID; the partition
// comes from the first instance ID the server assigns.
func TestDeploymentToken(t *testing.T) {
	clearEnv(t)
	srv := prefactortest.NewServer(prefactortest.WithDeploymentToken(), prefactortest.WithPartition(123456789))
	defer srv.Close()
	exp, err := prefactor.New(append([]prefactor.Option{prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token())}, fastRetry...)...)
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background())
	pctx, p := tr.Start(ctx, "agent", nil)
	_, c := tr.Start(pctx, "tool", agenttrace.ToolInput{Name: "x"})
	c.End()
	p.End()
	run.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.NoError(t, srv.Validate())
	insts := srv.Instances()
	require.Len(t, insts, 1)
	part, err := prefactor.PFIDPartition(insts[0].ID)
	require.NoError(t, err)
	require.EqualValues(t, 123456789, part)
	require.Equal(t, "complete", insts[0].Status)
	spans := srv.Spans(insts[0].ID)
	require.Len(t, spans, 2)
	for _, s := range spans {
		sp, _ := prefactor.PFIDPartition(s.ID)
		require.EqualValues(t, 123456789, sp)
	}
	require.Zero(t, tr.Stats().Failed)
}

func TestTokenNeverLeaks(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.srv.FailNext(prefactortest.EndpointAny, prefactortest.Fault{Status: 500, Body: `{"status":"error","code":"unexpected","message":"boom"}`},
		prefactortest.Fault{Drop: true})
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "nope", nil) // rejected: an error with the API's message
	s.End()
	run.End()
	_ = h.tr.Shutdown(context.Background())
	h.noSecret(t)
	require.False(t, strings.Contains(h.exp.String(), h.srv.Token()))
}

// Retries keep the request unchanged (the same idempotency key), wait at
// least what Retry-After asks, and timestamps are UTC with milliseconds.
func TestRetriesKeepTheKeyAndHonourRetryAfter(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(prefactor.ModeSingle)})
	h.srv.FailNext(prefactortest.EndpointCreateSpan,
		prefactortest.Fault{Status: 429, RetryAfter: time.Second},
		prefactortest.Fault{Status: 503})
	ctx, run := h.tr.StartInstance(context.Background())
	_, s := h.tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "x"})
	s.End()
	run.End()
	h.shutdown(t)

	var creates []prefactortest.Request
	for _, r := range h.srv.Requests() {
		if r.Endpoint == prefactortest.EndpointCreateSpan {
			creates = append(creates, r)
		}
		if r.Endpoint == prefactortest.EndpointStart || r.Endpoint == prefactortest.EndpointFinishInstance {
			require.Regexp(t, `"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`, string(r.Body))
		}
	}
	require.Len(t, creates, 3, "two faults, then success")
	require.Equal(t, creates[0].Body, creates[1].Body, "a retry sends the same request")
	require.Equal(t, creates[0].Body, creates[2].Body)
	require.Contains(t, string(creates[0].Body), `"idempotency_key":"sc-`)
	require.Regexp(t, `"started_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","finished_at":"[^"]+\.\d{3}Z"`, string(creates[0].Body))
	require.GreaterOrEqual(t, creates[1].At.Sub(creates[0].At), 950*time.Millisecond, "Retry-After: 1 was honoured")
	require.Len(t, h.srv.AllSpans(), 1)
}
