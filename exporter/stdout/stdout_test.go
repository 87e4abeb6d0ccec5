package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClock() *stepClock {
	return &stepClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: 10 * time.Millisecond}
}

func newTracer(t *testing.T, exp *stdout.Exporter, opts ...agenttrace.Option) *agenttrace.Tracer {
	t.Helper()
	opts = append([]agenttrace.Option{agenttrace.WithExporter(exp), agenttrace.WithAgent("bot", "2.0"),
		agenttrace.WithClock(newClock().Now)}, opts...)
	tr, err := agenttrace.New(opts...)
	require.NoError(t, err)
	return tr
}

// quotaError is an error type with a name worth printing.
type quotaError struct{}

func (quotaError) Error() string { return "quota exhausted" }

// scenario records agent -> llm, a tool that fails, its retry, a streamed
// llm call and a tool with a typed error, then ends the instance if asked.
func scenario(t *testing.T, exp *stdout.Exporter, endInstance bool) {
	t.Helper()
	tr := newTracer(t, exp)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithInstanceName(`triage "login" bug`),
		agenttrace.WithUserID("u1"), agenttrace.WithChannel("cli"))
	ctx, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "helper"})
	_, llm := tr.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	llm.SetResult(agenttrace.LLMResponse{FinishReason: "tool_calls", Usage: &agenttrace.Usage{PromptTokens: 100, CompletionTokens: 20},
		Cost: &agenttrace.Cost{Total: 0.0012}})
	llm.End()
	_, tool := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "search", CallID: "c1"})
	tool.Fail(errors.New("timeout"))
	_, tool = tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "search", CallID: "c1"})
	tool.SetResult(agenttrace.ToolOutput{Output: "3 hits"})
	tool.End()
	_, stream := tr.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o", Stream: true}, agenttrace.WithName("answer"))
	stream.MarkFirstToken()
	stream.SetUsage(agenttrace.Usage{PromptTokens: 200, CompletionTokens: 30})
	stream.SetResult(agenttrace.LLMResponse{FinishReason: "stop"})
	stream.End()
	_, billing := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "charge", CallID: "c2"})
	billing.Fail(quotaError{})
	agent.End()
	if endInstance {
		inst.End()
	}
	require.NoError(t, tr.Shutdown(context.Background()))
}

func TestTree(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), true)
	want := `● bot 2.0  complete  140ms
│ spans 6 (4 complete, 2 failed)  llm calls 2  tokens 350 (300 in, 50 out)  cost $0.0012  ttft 10ms
│ name="triage \"login\" bug" user=u1 channel=cli
└─ agent helper  complete  120ms
   ├─ llm gpt-4o  complete  10ms  provider=openai  tokens 120 (100 in, 20 out)  cost $0.0012  finish=tool_calls
   ├─ tool search  failed  10ms  call=c1  error: timeout
   ├─ tool search  complete  10ms  call=c1
   ├─ llm answer  complete  20ms  model=gpt-4o  streamed  tokens 230 (200 in, 30 out)  ttft 10ms  finish=stop
   └─ tool charge  failed  10ms  call=c2  error: quota exhausted (stdout_test.quotaError)
`
	require.Equal(t, want, buf.String())
}

func TestUnfinishedInstanceIsPrintedAtShutdown(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), false)
	out := buf.String()
	// Shutdown fails the instance left running, and says why.
	require.True(t, strings.HasPrefix(out,
		"● bot 2.0  failed  140ms\n│ spans 6 (4 complete, 2 failed)  llm calls 2  tokens 350 (300 in, 50 out)  cost $0.0012  ttft 10ms\n"), out)
	require.Contains(t, out, "│ error: the tracer shut down before the instance ended (shutdown)\n")
	require.Contains(t, out, "   ├─ llm answer  complete  20ms")
}

// Spans still open when their instance ends end with it, and a late End
// on them prints nothing more.
func TestRunningSpansEndWithTheirInstance(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()))
	ctx, inst := tr.StartInstance(context.Background())
	ctx, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "planner"})
	_, queued := tr.StartPending(ctx, "tool", agenttrace.ToolInput{Name: "fetch", CallID: "c9"})
	require.NoError(t, tr.Flush(context.Background())) // exported as active and pending
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	const why = "error: instance ended first: the span was still open when its instance ended (instance_ended)"
	require.Equal(t, `● bot 2.0  complete  30ms
│ spans 2 (1 failed, 1 cancelled)
└─ agent planner  failed  20ms  `+why+`
   └─ tool fetch  cancelled  call=c9  `+why+`
`, buf.String())

	buf.Reset()
	queued.Cancel("not needed")
	agent.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Empty(t, buf.String())
}

func TestSpanRecordsAreMergedAcrossBatches(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()))
	ctx, inst := tr.StartInstance(context.Background())
	_, llm := tr.StartPending(ctx, "llm", agenttrace.LLMRequest{Model: "m1"})
	require.NoError(t, tr.Flush(context.Background())) // SpanStarted (pending)
	llm.Activate()
	require.NoError(t, tr.Flush(context.Background())) // SpanActivated
	llm.SetResult(agenttrace.LLMResponse{FinishReason: "length", Usage: &agenttrace.Usage{PromptTokens: 5, CompletionTokens: 7}})
	llm.End()
	require.NoError(t, tr.Flush(context.Background())) // SpanEnded
	require.Empty(t, buf.String(), "nothing is printed before the instance ends")
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Equal(t, `● bot 2.0  complete  40ms
│ spans 1 (1 complete)  llm calls 1  tokens 12 (5 in, 7 out)
└─ llm m1  complete  10ms  tokens 12 (5 in, 7 out)  finish=length
`, buf.String())
}

func TestIDsInHeaderByDefault(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf)), true)
	require.Regexp(t, `^● bot 2\.0  complete  140ms  instance [0-9A-Z]{26}\n`, buf.String())
	// Span IDs are never printed.
	require.Equal(t, 1, strings.Count(buf.String(), " instance "))
}

func TestParentNotExportedIsShownAtRoot(t *testing.T) {
	var buf bytes.Buffer
	exp := stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	inst := &agenttrace.InstanceData{ID: id(1), Agent: agenttrace.Agent{Name: "a"}, Status: agenttrace.StatusActive, StartedAt: base}
	span := func(sid, parent byte, typ string, at time.Duration) agenttrace.SpanData {
		d := agenttrace.SpanData{ID: id(sid), InstanceID: id(1), Type: typ, Status: agenttrace.StatusComplete,
			CreatedAt: base.Add(at), StartedAt: base.Add(at), EndedAt: base.Add(at + time.Millisecond)}
		if parent != 0 {
			d.ParentID = id(parent)
		}
		return d
	}
	ended := *inst
	ended.Status, ended.EndedAt = agenttrace.StatusComplete, base.Add(time.Second)
	require.NoError(t, exp.Export(context.Background(), []agenttrace.Record{
		{Kind: agenttrace.InstanceStarted, Instance: inst},
		{Kind: agenttrace.SpanStarted, Span: span(3, 0, "chain", 3*time.Millisecond)},
		{Kind: agenttrace.SpanStarted, Span: span(4, 99, "tool", 1*time.Millisecond)}, // parent dropped
		{Kind: agenttrace.SpanStarted, Span: span(5, 3, "llm", 5*time.Millisecond)},
		{Kind: agenttrace.SpanStarted, Span: span(6, 3, "tool", 4*time.Millisecond)},
		{Kind: agenttrace.InstanceEnded, Instance: &ended},
	}))
	require.NoError(t, exp.Shutdown(context.Background()))
	require.Equal(t, `● a  complete  1s
│ spans 4 (4 complete)  llm calls 1
├─ tool  complete  1ms  (parent not exported)
└─ chain  complete  1ms
   ├─ tool  complete  1ms
   └─ llm  complete  1ms
`, buf.String())
}

func id(b byte) agenttrace.ID { return agenttrace.ID{0: 1, 15: b} }

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithJSONLines()))
	ctx, inst := tr.StartInstance(context.Background())
	_, llm := tr.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	require.NoError(t, tr.Flush(context.Background()))
	require.Contains(t, buf.String(), `"kind":"span_started"`, "records are written as they arrive")
	llm.SetResult(agenttrace.LLMResponse{Text: "<b>hi</b>"})
	llm.End()
	_, tool := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "search"})
	tool.End()
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var kinds []string
	for _, l := range lines {
		var m struct {
			Kind     string         `json:"kind"`
			Instance map[string]any `json:"instance"`
			Span     map[string]any `json:"span"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		kinds = append(kinds, m.Kind)
		if strings.HasPrefix(m.Kind, "span_") {
			require.NotEmpty(t, m.Span["id"], l)
			require.Nil(t, m.Instance, l)
		} else {
			require.NotEmpty(t, m.Instance["id"], l)
			require.Nil(t, m.Span, l)
		}
	}
	// The llm span crossed a flush: started, then ended. The tool span
	// started and ended in one window: one record in its final state.
	require.Equal(t, []string{"instance_started", "span_started", "span_ended", "span_started", "instance_ended"}, kinds)
	require.Contains(t, lines[1], `"payload":{"provider":"openai","model":"gpt-4o"}`)
	require.Contains(t, lines[2], `"result":{"text":"<b>hi</b>"}`, "HTML is not escaped")
	require.Contains(t, lines[3], `"status":"complete"`)
	require.Contains(t, lines[4], `"summary":{`)
}

func TestJSONLinesWithoutPayloads(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithJSONLines(), stdout.WithoutPayloads()))
	ctx, inst := tr.StartInstance(context.Background())
	_, tool := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "secret-tool", Arguments: map[string]string{"password": "x"}})
	tool.SetResult(agenttrace.ToolOutput{Output: "secret output"})
	tool.End()
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.NotContains(t, buf.String(), "secret")
	require.Equal(t, 3, strings.Count(buf.String(), "\n"))
}

func TestMaxSpans(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs(), stdout.WithMaxSpans(2)))
	ctx, inst := tr.StartInstance(context.Background())
	for range 5 {
		_, s := tr.Start(ctx, "chain", agenttrace.ChainInput{Name: "step"})
		s.End()
	}
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	out := buf.String()
	require.Contains(t, out, "│ spans 5 (5 complete)", "the header counts every span")
	require.Equal(t, 2, strings.Count(out, "chain step"))
	require.Contains(t, out, "   … 3 more spans not shown (WithMaxSpans 2)\n")
}

func TestColor(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs(), stdout.WithColor(true)), true)
	require.Contains(t, buf.String(), "\x1b[32mcomplete\x1b[0m")
	require.Contains(t, buf.String(), "\x1b[1;31mfailed\x1b[0m")

	buf.Reset()
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), true)
	require.NotContains(t, buf.String(), "\x1b[")
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

func TestWriteErrorIsReturned(t *testing.T) {
	w := &failWriter{}
	exp := stdout.New(stdout.WithWriter(w))
	// One batch with two instances, each started and ended: two trees.
	var batch []agenttrace.Record
	for i := range 2 {
		d := &agenttrace.InstanceData{ID: agenttrace.ID{byte(i + 1)}, Status: agenttrace.StatusActive}
		end := *d
		end.Status = agenttrace.StatusComplete
		batch = append(batch, agenttrace.Record{Kind: agenttrace.InstanceStarted, Instance: d},
			agenttrace.Record{Kind: agenttrace.InstanceEnded, Instance: &end})
	}
	err := exp.Export(context.Background(), batch)
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, 2, w.n, "a failed write does not stop the rest of the batch")
	require.NoError(t, exp.Shutdown(context.Background()))

	// Through a tracer, the error is counted and reported.
	w2 := &failWriter{}
	tr := newTracer(t, stdout.New(stdout.WithWriter(w2)))
	_, inst := tr.StartInstance(context.Background())
	inst.End()
	_ = tr.Flush(context.Background())
	require.Equal(t, "disk full", tr.Stats().LastError)
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, tr.Shutdown(context.Background()), &de)
	require.EqualValues(t, 2, de.Failed, "the instance, started and ended")
}

func TestExportAfterShutdown(t *testing.T) {
	exp := stdout.New(stdout.WithWriter(&bytes.Buffer{}))
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, exp.Shutdown(context.Background()))
	require.ErrorIs(t, exp.Export(context.Background(), nil), stdout.ErrShutdown)
	require.Equal(t, "stdout", exp.Name())
}

// lockedBuffer lets the race detector see only the exporter's own locking.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	if !l.mu.TryLock() {
		panic("concurrent Write")
	}
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestConcurrentExportsAreSerialized(t *testing.T) {
	w := &lockedBuffer{}
	exp := stdout.New(stdout.WithWriter(w), stdout.WithoutIDs())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				iid := agenttrace.ID{0: byte(g + 1), 1: byte(k + 1)}
				start := &agenttrace.InstanceData{ID: iid, Agent: agenttrace.Agent{Name: "g"}, Status: agenttrace.StatusActive}
				end := *start
				end.Status = agenttrace.StatusComplete
				_ = exp.Export(context.Background(), []agenttrace.Record{
					{Kind: agenttrace.InstanceStarted, Instance: start},
					{Kind: agenttrace.SpanStarted, Span: agenttrace.SpanData{ID: agenttrace.ID{0: 1}, InstanceID: iid, Type: "tool", Status: agenttrace.StatusComplete}},
					{Kind: agenttrace.InstanceEnded, Instance: &end},
				})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, exp.Shutdown(context.Background()))
	require.Equal(t, 400, strings.Count(w.b.String(), "● g  complete"))
	require.Equal(t, 400, strings.Count(w.b.String(), "└─ tool  complete\n"))
}

func TestFailedInstanceAndAlteredPayload(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), agenttrace.WithPayloadLimit(1024))
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithPurpose(agenttrace.PurposeEval))
	_, tool := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "dump", Arguments: strings.Repeat("x", 4096)})
	tool.SetResult(agenttrace.ToolOutput{Output: "bad input", IsError: true})
	tool.End()
	inst.Fail(context.DeadlineExceeded)
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Equal(t, `● bot 2.0  failed  30ms
│ spans 1 (1 complete)
│ purpose=eval
│ error: context deadline exceeded
└─ tool dump  complete  10ms  tool returned an error  payload altered (truncated or unencodable)
`, buf.String())
}

// A record that cannot be encoded as JSON (a NaN cost) costs only itself:
// the rest of the batch is written, and it is counted failed.
func TestJSONLinesBadValueLosesOnlyItsRecord(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(t, stdout.New(stdout.WithWriter(&buf), stdout.WithJSONLines()))
	ctx, inst := tr.StartInstance(context.Background())
	for i := range 50 {
		_, s := tr.Start(ctx, "llm", nil)
		if i == 17 {
			s.SetCost(agenttrace.Cost{Total: math.NaN(), Currency: "USD"})
		}
		s.End()
	}
	inst.End()
	err := tr.Flush(context.Background())
	var pe *agenttrace.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []int{18}, pe.Failed, "the instance start, then spans 0-16, then the NaN one")
	require.ErrorContains(t, err, "unsupported value: NaN")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 51, "52 records, one lost")
	for _, l := range lines {
		require.True(t, json.Valid([]byte(l)), l)
	}
	st := tr.Stats()
	require.EqualValues(t, 1, st.Failed)
	require.EqualValues(t, 51, st.Exported)
	var de *agenttrace.DeliveryError
	require.ErrorAs(t, tr.Shutdown(context.Background()), &de)
	require.EqualValues(t, 1, de.Failed)
}
