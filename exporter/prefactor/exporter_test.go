package prefactor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fastRetry keeps tests quick: short waits, a short breaker cooldown.
var fastRetry = []prefactor.Option{
	prefactor.WithRetry(prefactor.Retry{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond,
		Deadline: time.Minute, AttemptTimeout: 2 * time.Second}),
	prefactor.WithBreaker(prefactor.Breaker{Failures: 5, Cooldown: 10 * time.Millisecond, MaxCooldown: 50 * time.Millisecond}),
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	srv  *prefactortest.Server
	exp  *prefactor.Exporter
	tr   *agenttrace.Tracer
	logs *syncBuffer
	errs *errList
}

type errList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errList) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errList) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// newHarness starts a fake API, an exporter and a tracer.
func newHarness(t *testing.T, srvOpts []prefactortest.Option, expOpts []prefactor.Option, trOpts ...agenttrace.Option) *harness {
	t.Helper()
	clearEnv(t)
	srv := prefactortest.NewServer(srvOpts...)
	t.Cleanup(srv.Close)
	h := &harness{srv: srv, logs: &syncBuffer{}, errs: &errList{}}
	opts := []prefactor.Option{
		prefactor.WithURL(srv.URL), prefactor.WithToken(srv.Token()),
		prefactor.WithAgentID(srv.AgentID()), prefactor.WithEnvironmentID(srv.EnvironmentID()),
		prefactor.WithLogger(slog.New(slog.NewTextHandler(h.logs, nil))),
		prefactor.WithErrorHandler(h.errs.add),
	}
	opts = append(append(opts, fastRetry...), expOpts...)
	exp, err := prefactor.New(opts...)
	require.NoError(t, err)
	h.exp = exp
	tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(exp),
		agenttrace.WithAgent("travel-agent", "1.2.0"), agenttrace.WithFlushInterval(time.Hour),
		agenttrace.WithExportTimeout(2 * time.Minute)}, trOpts...)...)
	require.NoError(t, err)
	h.tr = tr
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return h
}

func (h *harness) shutdown(t *testing.T) {
	t.Helper()
	require.NoError(t, h.tr.Shutdown(context.Background()))
}

// noSecret checks that the token shows nowhere.
func (h *harness) noSecret(t *testing.T) {
	t.Helper()
	tok := h.srv.Token()
	require.NotContains(t, h.logs.String(), tok)
	st, _ := json.Marshal(h.exp.Stats())
	require.NotContains(t, string(st), tok)
	ts, _ := json.Marshal(h.tr.Stats())
	require.NotContains(t, string(ts), tok)
	for _, err := range h.errs.all() {
		require.NotContains(t, err.Error(), tok)
	}
}

func pfid(id agenttrace.ID, srv *prefactortest.Server) string {
	p, _ := prefactor.PFIDPartition(srv.AgentID())
	return prefactor.PFID(id, p)
}

// The quickstart scenario: a planning LLM call, two tool calls (one failing
// once and retried), a streamed answer; everything lands complete and right.
func TestScenarioLands(t *testing.T) {
	for _, mode := range []prefactor.Mode{prefactor.ModeBulk, prefactor.ModeSingle} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, nil, []prefactor.Option{prefactor.WithMode(mode)})
			ctx, run := h.tr.StartInstance(context.Background(), agenttrace.WithUserID("u-1"),
				agenttrace.WithPurpose(agenttrace.PurposeSmokeTest))
			actx, agent := h.tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "travel-agent", Input: "Plan Lisbon"})

			_, plan := h.tr.Start(actx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o",
				Messages: []agenttrace.Message{{Role: "user", Content: "Plan Lisbon"}}})
			plan.SetResult(agenttrace.LLMResponse{Text: "search flights, then hotels", FinishReason: "stop",
				Usage: &agenttrace.Usage{PromptTokens: 120, CompletionTokens: 30}})
			plan.End()
			require.NoError(t, h.tr.Flush(ctx)) // the agent span is exported active, then finished

			_, t1 := h.tr.Start(actx, "tool", agenttrace.ToolInput{Name: "flights", CallID: "c1", Arguments: map[string]any{"to": "LIS"}})
			t1.Fail(errors.New("timeout"))
			_, t2 := h.tr.Start(actx, "tool", agenttrace.ToolInput{Name: "flights", CallID: "c2", Arguments: map[string]any{"to": "LIS"}})
			t2.SetResult(agenttrace.ToolOutput{Output: "TP1350"})
			t2.End()
			_, ans := h.tr.Start(actx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o", Stream: true})
			ans.MarkFirstToken()
			ans.SetResult(agenttrace.LLMResponse{Text: "Fly TP1350", FinishReason: "stop"})
			ans.End()
			_, q := h.tr.StartPending(actx, "tool", agenttrace.ToolInput{Name: "hotels"})
			q.Cancel("not needed")
			agent.SetResult(agenttrace.AgentOutput{Output: "Fly TP1350"})
			agent.End()
			run.End()
			h.shutdown(t)

			require.NoError(t, h.srv.Validate())
			insts := h.srv.Instances()
			require.Len(t, insts, 1)
			in := insts[0]
			require.Equal(t, pfid(run.ID(), h.srv), in.ID)
			require.Equal(t, "complete", in.Status)
			require.Equal(t, "smoke_test", in.Purpose)
			require.Equal(t, h.srv.AgentID(), in.AgentID)
			require.Equal(t, h.srv.EnvironmentID(), in.EnvironmentID)
			require.Contains(t, string(in.AgentVersion), `"external_identifier":"1.2.0"`)
			require.Contains(t, string(in.SchemaVersion), h.tr.SchemaVersion().ExternalIdentifier)
			require.Equal(t, run.Data().StartedAt.UTC().Truncate(time.Millisecond), in.StartedAt.UTC())

			spans := h.srv.Spans(in.ID)
			require.Len(t, spans, 6)
			byID := map[string]prefactortest.Span{}
			for _, s := range spans {
				byID[s.ID] = s
				require.Equal(t, 1, s.Creates, "created once: %s", s.ID)
				require.LessOrEqual(t, s.Finishes, 1)
			}
			for _, c := range []struct {
				span   *agenttrace.Span
				status string
				parent *agenttrace.Span
			}{
				{agent, "complete", nil}, {plan, "complete", agent}, {t1, "failed", agent},
				{t2, "complete", agent}, {ans, "complete", agent}, {q, "cancelled", agent},
			} {
				s, ok := byID[pfid(c.span.ID(), h.srv)]
				require.True(t, ok)
				require.Equal(t, c.status, s.Status)
				if c.parent != nil {
					require.Equal(t, pfid(c.parent.ID(), h.srv), s.ParentID)
				} else {
					require.Empty(t, s.ParentID)
				}
				d := c.span.Data()
				require.Equal(t, d.EndedAt.UTC().Truncate(time.Millisecond), s.FinishedAt.UTC())
				if c.status != "cancelled" {
					require.Equal(t, d.StartedAt.UTC().Truncate(time.Millisecond), s.StartedAt.UTC())
				}
			}
			agentSpan := byID[pfid(agent.ID(), h.srv)]
			require.Equal(t, 1, agentSpan.Finishes, "the agent span was created active and finished")
			planSpan := byID[pfid(plan.ID(), h.srv)]
			require.JSONEq(t, `{"provider":"openai","model":"gpt-4o","messages":[{"role":"user","content":"Plan Lisbon"}]}`, string(planSpan.Payload))
			require.Contains(t, string(planSpan.ResultPayload), `"prompt_tokens":120`)
			failed := byID[pfid(t1.ID(), h.srv)]
			require.Contains(t, string(failed.ResultPayload), `"message":"timeout"`)
			require.Equal(t, "tool", failed.SchemaName)

			st := h.tr.Stats()
			require.Zero(t, st.Failed)
			require.Zero(t, st.Dropped.Total())
			es := h.exp.Stats()
			require.Zero(t, es.Rejected)
			require.Zero(t, es.GaveUp)
			require.Equal(t, mode == prefactor.ModeBulk, es.Bulk)
			if mode == prefactor.ModeBulk {
				require.NotZero(t, es.BulkRequests)
			} else {
				require.Zero(t, es.BulkRequests)
			}
			for _, r := range h.srv.Requests() {
				require.Equal(t, "agenttrace-go@"+prefactor.Version, r.Header.Get("X-Prefactor-SDK"))
				require.Equal(t, "Bearer "+h.srv.Token(), r.Header.Get("Authorization"))
			}
			h.noSecret(t)
		})
	}
}

func TestSDKHeaderWithAdapterEntry(t *testing.T) {
	h := newHarness(t, nil, []prefactor.Option{prefactor.WithSDKEntry("agenttrace-openai@0.3.0")})
	_, s := h.tr.Start(context.Background(), "llm", nil)
	s.End()
	h.shutdown(t)
	reqs := h.srv.Requests()
	require.NotEmpty(t, reqs)
	require.Equal(t, "agenttrace-openai@0.3.0 agenttrace-go@"+prefactor.Version, reqs[0].Header.Get("X-Prefactor-SDK"))
}

// spawn records n spans spread over the instances, a few levels deep.
func spawn(tr *agenttrace.Tracer, insts []context.Context, n int) {
	var wg sync.WaitGroup
	per := n / len(insts)
	for k, ctx := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			count := per
			if k == len(insts)-1 {
				count = n - per*(len(insts)-1)
			}
			var parent context.Context = ctx
			for i := range count {
				c, s := tr.Start(parent, "tool", agenttrace.ToolInput{Name: fmt.Sprintf("t%d", i), Arguments: map[string]int{"i": i}})
				if i%10 == 0 {
					parent = c // a new subtree every 10 spans
					defer s.End()
					continue
				}
				s.SetResult(agenttrace.ToolOutput{Output: i})
				s.End()
			}
		}()
	}
	wg.Wait()
}

// The fault matrix: 20% 503, 5% 429 with Retry-After, 5% dropped
// connections, 5% answers slower than the attempt timeout. Every span
// arrives exactly once, in order; nothing is lost or duplicated.
func TestFaultMatrix(t *testing.T) {
	n, instances := 10_000, 20
	if testing.Short() {
		n = 2000
	}
	// The fake server applies a bulk request under one lock, so the
	// attempt timeout must cover the lanes' requests queueing behind each
	// other (8 lanes of 100 items, about 2 ms an item under -race on a
	// loaded machine); slow answers outlast it, so they are lost answers
	// the client retries.
	h := newHarness(t, nil, []prefactor.Option{
		prefactor.WithRetry(prefactor.Retry{Initial: 2 * time.Millisecond, Max: 40 * time.Millisecond,
			Deadline: 2 * time.Minute, AttemptTimeout: 4 * time.Second}),
		prefactor.WithBulkLimits(100, 4<<20),
	}, agenttrace.WithQueueLimits(1_000_000, 1<<30), agenttrace.WithFlushInterval(100*time.Millisecond))
	h.srv.SetRandomFaults(prefactortest.RandomFaults{Seed: 7, Status503: 0.20, Status429: 0.05, Drop: 0.05, Slow: 0.05,
		RetryAfter: time.Second, SlowDelay: 5 * time.Second})

	var ctxs []context.Context
	var runs []*agenttrace.Instance
	for range instances {
		ctx, run := h.tr.StartInstance(context.Background())
		ctxs, runs = append(ctxs, ctx), append(runs, run)
	}
	spawn(h.tr, ctxs, n)
	for _, r := range runs {
		r.End()
	}
	h.shutdown(t)
	h.srv.SetRandomFaults(prefactortest.RandomFaults{})

	require.NoError(t, h.srv.Validate())
	all := h.srv.AllSpans()
	require.Len(t, all, n)
	for _, s := range all {
		require.Equal(t, 1, s.Creates)
		require.LessOrEqual(t, s.Finishes, 1)
		require.Equal(t, "complete", s.Status)
	}
	for _, in := range h.srv.Instances() {
		require.Equal(t, "complete", in.Status)
	}
	st := h.tr.Stats()
	require.Zero(t, st.Failed)
	require.Zero(t, st.Dropped.Total())
	es := h.exp.Stats()
	require.Zero(t, es.GaveUp)
	require.Zero(t, es.Rejected)
	require.NotZero(t, es.Retries, "faults were injected")
	c := h.srv.Counts()
	t.Logf("requests %d, retries %d, breaker opens %d, server counts %+v", es.Requests, es.Retries, es.BreakerOpens, c)
	h.noSecret(t)
}
