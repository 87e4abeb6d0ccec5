package prefactor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// These tests run with the defaults: no retry, breaker, timeout or queue
// option, only what connects the exporter to the server. Their outages
// last 35 seconds, longer than the tracer's default export timeout (30s),
// which used to cut the exporter's retries short. They run in parallel;
// `go test -short` skips them.

// newDefaults starts a fake API and a tracer with the Prefactor exporter,
// configured only with the server's address and credentials.
func newDefaults(t *testing.T, srvOpts ...prefactortest.Option) (*prefactortest.Server, *prefactor.Exporter, *agenttrace.Tracer) {
	t.Helper()
	srv := prefactortest.NewServer(srvOpts...)
	t.Cleanup(srv.Close)
	exp, err := prefactor.New(prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()))
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return srv, exp, tr
}

func slowTest(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time outage test")
	}
	t.Parallel()
}

// record records n tool spans in each instance, a few levels deep.
func record(tr *agenttrace.Tracer, ctxs []context.Context, n int, tag string) {
	for _, ctx := range ctxs {
		pctx, parent := tr.Start(ctx, "agent", nil)
		for i := range n {
			_, s := tr.Start(pctx, "tool", agenttrace.ToolInput{Name: fmt.Sprintf("%s-%d", tag, i)})
			s.SetResult(agenttrace.ToolOutput{Output: i})
			s.End()
		}
		parent.End()
	}
}

func startRuns(tr *agenttrace.Tracer, n int) ([]context.Context, []*agenttrace.Instance) {
	var ctxs []context.Context
	var runs []*agenttrace.Instance
	for range n {
		ctx, run := tr.StartInstance(context.Background())
		ctxs, runs = append(ctxs, ctx), append(runs, run)
	}
	return ctxs, runs
}

// requireAllDelivered checks that the server holds every span finished
// exactly once, every instance complete, and that the tracer lost nothing.
func requireAllDelivered(t *testing.T, srv *prefactortest.Server, exp *prefactor.Exporter, tr *agenttrace.Tracer, spans int) {
	t.Helper()
	require.NoError(t, srv.Validate())
	requireNoActiveUnderFinished(t, srv)
	all := srv.AllSpans()
	require.Len(t, all, spans)
	for _, s := range all {
		require.Equal(t, 1, s.Creates, s.ID)
		require.Equal(t, "complete", s.Status, s.ID)
	}
	for _, in := range srv.Instances() {
		require.Equal(t, "complete", in.Status, in.ID)
	}
	st := tr.Stats()
	require.Zero(t, st.Failed, "%+v", st)
	require.Zero(t, st.Dropped.Total(), "%+v", st)
	require.Zero(t, st.Queued)
	require.Equal(t, st.Recorded, st.Exported+st.Coalesced)
	es := exp.Stats()
	require.Zero(t, es.GaveUp)
	require.Zero(t, es.Rejected)
	require.Zero(t, es.Skipped)
}

// requireNoActiveUnderFinished checks that no instance finished at the
// server while one of its spans was still open there.
func requireNoActiveUnderFinished(t *testing.T, srv *prefactortest.Server) {
	t.Helper()
	for _, in := range srv.Instances() {
		if in.Status != "complete" && in.Status != "failed" {
			continue
		}
		for _, s := range srv.Spans(in.ID) {
			require.NotContains(t, []string{"active", "pending"}, s.Status, "span %s of finished instance %s", s.ID, in.ID)
			require.False(t, s.FinishedAt.After(in.FinishedAt), "span %s finished after its instance", s.ID)
		}
	}
}

// firstSuccessAfter returns the time of the first accepted request at or
// after t0.
func firstSuccessAfter(srv *prefactortest.Server, t0 time.Time) time.Time {
	for _, r := range srv.Requests() {
		if !r.At.Before(t0) && r.Status < 300 && !r.Fault {
			return r.At
		}
	}
	return time.Time{}
}

// A 35 s outage in the middle of a run, with the defaults: nothing is lost,
// no instance finishes before its spans, and delivery resumes within a
// couple of seconds of the server coming back.
func TestDefaultsOutageMidRun(t *testing.T) {
	slowTest(t)
	srv, exp, tr := newDefaults(t)
	ctxs, runs := startRuns(tr, 4)
	record(tr, ctxs, 20, "before")
	require.NoError(t, tr.Flush(context.Background()))

	const outage = 35 * time.Second
	srv.Outage(outage)
	back := time.Now().Add(outage)
	for k := range 5 { // records go on during the outage; two runs end in it
		record(tr, ctxs, 20, fmt.Sprintf("during%d", k))
		if k == 2 {
			runs[0].End()
			runs[1].End()
			ctxs = ctxs[2:]
		}
		time.Sleep(5 * time.Second)
	}
	time.Sleep(time.Until(back))
	record(tr, ctxs, 20, "after")
	runs[2].End()
	runs[3].End()
	require.NoError(t, tr.Shutdown(context.Background()))

	requireAllDelivered(t, srv, exp, tr, 4*21+4*5*21-(2*2*21)+2*21)
	resumed := firstSuccessAfter(srv, back)
	require.False(t, resumed.IsZero())
	// MaxCooldown (2s) bounds the probe's wait; the margin only absorbs a
	// loaded machine. Before, a lone retry slept up to 30 s.
	require.Less(t, resumed.Sub(back), 6*time.Second, "delivery resumed %v after the server came back", resumed.Sub(back))
	require.NotZero(t, exp.Stats().BreakerOpens)
}

// A 35 s outage from the very first request (the token check, the
// registrations), with the defaults: nothing is lost once the server is back.
func TestDefaultsOutageFromTheStart(t *testing.T) {
	slowTest(t)
	srv, exp, tr := newDefaults(t)
	const outage = 35 * time.Second
	srv.Outage(outage)
	back := time.Now().Add(outage)
	ctxs, runs := startRuns(tr, 4)
	for k := range 3 {
		record(tr, ctxs, 25, fmt.Sprintf("r%d", k))
		time.Sleep(2 * time.Second)
	}
	for _, r := range runs {
		r.End()
	}
	require.NoError(t, tr.Shutdown(context.Background()))
	require.True(t, time.Now().After(back), "Shutdown waited for the server")
	requireAllDelivered(t, srv, exp, tr, 4*3*26)
	c := srv.Counts()
	require.NotZero(t, c.Requests[prefactortest.EndpointPing])
}

// The automatic fallback to single requests (the server has no bulk
// endpoint) under 20% 503, 5% 429, 5% connection resets and 5% lost
// answers, with the defaults: every span arrives exactly once.
func TestDefaultsSingleRequestFaults(t *testing.T) {
	slowTest(t)
	srv, exp, tr := newDefaults(t, prefactortest.WithoutBulk())
	srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 11, Status503: 0.20, Status429: 0.05, Drop: 0.10,
		RetryAfter: time.Second})
	ctxs, runs := startRuns(tr, 8)
	record(tr, ctxs, 24, "x")
	for _, r := range runs {
		r.End()
	}
	require.NoError(t, tr.Shutdown(context.Background()))
	srv.SetRandomFaults(prefactortest.RandomFaults{})
	require.False(t, exp.Stats().Bulk)
	requireAllDelivered(t, srv, exp, tr, 8*25)
	require.NotZero(t, exp.Stats().Retries)
	replays := 0
	for _, r := range srv.Requests() {
		if r.Replayed {
			replays++
		}
	}
	require.NotZero(t, replays, "lost answers were retried as idempotent replays")
}
