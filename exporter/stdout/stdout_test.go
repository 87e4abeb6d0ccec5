package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// fakeClock advances by step on every reading.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: 10 * time.Millisecond}
}

func scenario(t *testing.T, exp *stdout.Exporter, endInstance bool) {
	t.Helper()
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithAgent("bot", "2.0"),
		agenttrace.WithClock(newClock().Now))
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background(), agenttrace.WithUserID("u1"))
	ctx, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "helper"})
	_, llm := tr.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	llm.SetResult(agenttrace.LLMResponse{FinishReason: "tool_calls", Usage: &agenttrace.Usage{PromptTokens: 100, CompletionTokens: 20},
		Cost: &agenttrace.Cost{Total: 0.0012}})
	llm.End()
	_, tool := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "search", CallID: "c1"})
	tool.Fail(errors.New("timeout"))
	_, tool = tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "search", CallID: "c1"})
	tool.End()
	_, stream := tr.Start(ctx, "llm", agenttrace.LLMRequest{Model: "gpt-4o", Stream: true}, agenttrace.WithName("answer"))
	stream.MarkFirstToken()
	stream.SetUsage(agenttrace.Usage{PromptTokens: 200, CompletionTokens: 30})
	stream.End()
	agent.End()
	if endInstance {
		inst.End()
	}
	require.NoError(t, tr.Shutdown(context.Background()))
}

func TestTree(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), true)
	want := `● bot 2.0  complete  120ms  spans 5 (4 complete, 1 failed)  tokens 350 (300 in, 50 out)  cost $0.0012  ttft 10ms  user=u1
└─ agent helper  complete 100ms
   ├─ llm gpt-4o  complete 10ms  provider=openai  tokens 100/20  cost $0.0012  finish=tool_calls
   ├─ tool search  failed 10ms  call=c1  error: *errors.errorString: timeout
   ├─ tool search  complete 10ms  call=c1
   └─ llm answer  complete 20ms  model=gpt-4o  tokens 200/30  ttft 10ms
`
	require.Equal(t, want, buf.String())
}

func TestUnfinishedInstanceAtShutdown(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs()), false)
	require.True(t, strings.HasPrefix(buf.String(), "● bot 2.0  still running"), buf.String())
	require.Contains(t, buf.String(), "└─ llm answer  complete")
}

func TestIDsShownByDefault(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf)), true)
	require.Regexp(t, `^● bot 2\.0 \[[0-9A-Z]{26}\]  complete`, buf.String())
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	scenario(t, stdout.New(stdout.WithWriter(&buf), stdout.WithJSONLines()), true)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var kinds []string
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		kinds = append(kinds, m["kind"].(string))
	}
	// Everything happened in one batch window: each span is one record.
	require.Equal(t, []string{"instance_started", "span_started", "span_started", "span_started", "span_started",
		"span_started", "instance_ended"}, kinds)
	require.Contains(t, lines[2], `"payload":{"provider":"openai","model":"gpt-4o"}`)
}

func TestMaxSpans(t *testing.T) {
	var buf bytes.Buffer
	tr, err := agenttrace.New(agenttrace.WithExporter(stdout.New(stdout.WithWriter(&buf), stdout.WithoutIDs(), stdout.WithMaxSpans(2))))
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	for range 5 {
		_, s := tr.Start(ctx, "chain", agenttrace.ChainInput{Name: "step"})
		s.End()
	}
	inst.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Contains(t, buf.String(), "… 3 more spans not shown")
	require.Equal(t, 2, strings.Count(buf.String(), "chain step"))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturned(t *testing.T) {
	tr, err := agenttrace.New(agenttrace.WithExporter(stdout.New(stdout.WithWriter(failWriter{}))))
	require.NoError(t, err)
	_, inst := tr.StartInstance(context.Background())
	inst.End()
	require.ErrorContains(t, tr.Flush(context.Background()), "disk full")
	require.Equal(t, "disk full", tr.Stats().LastError)
	require.NoError(t, tr.Shutdown(context.Background()))
}
