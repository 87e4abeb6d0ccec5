package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

// stepClock is a fake clock for deterministic durations: every reading is
// step later than the previous one.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// An instance is printed as a tree when it ends. WithoutIDs and a fake
// clock make the output the same on every run; by default the header also
// shows the instance ID.
func Example() {
	clock := &stepClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), step: 50 * time.Millisecond}
	tracer, _ := agenttrace.New(
		agenttrace.WithAgent("support-bot", "1.4.0"),
		agenttrace.WithExporter(stdout.New(stdout.WithWriter(os.Stdout), stdout.WithoutIDs())),
		agenttrace.WithClock(clock.Now),
	)
	ctx, run := tracer.StartInstance(context.Background(), agenttrace.WithUserID("u-42"), agenttrace.WithChannel("email"))
	ctx, agent := tracer.Start(ctx, "agent", agenttrace.AgentInput{Name: "support-bot", Input: "Where is my order?"})

	_, plan := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "anthropic", Model: "claude-sonnet-4"})
	plan.SetResult(agenttrace.LLMResponse{FinishReason: "tool_use",
		ToolCalls: []agenttrace.ToolCall{{ID: "toolu_1", Name: "lookup_order", Arguments: json.RawMessage(`{"order":"A-17"}`)}},
		Usage:     &agenttrace.Usage{PromptTokens: 300, CompletionTokens: 12}})
	plan.End()

	_, tool := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "lookup_order", CallID: "toolu_1"})
	tool.SetResult(agenttrace.ToolOutput{Output: "shipped"})
	tool.End()

	_, answer := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "anthropic", Model: "claude-sonnet-4", Stream: true})
	answer.MarkFirstToken()
	answer.SetResult(agenttrace.LLMResponse{Text: "It shipped today.", FinishReason: "end_turn",
		Usage: &agenttrace.Usage{PromptTokens: 340, CompletionTokens: 9},
		Cost:  &agenttrace.Cost{Total: 0.0012}})
	answer.End()

	agent.End()
	run.End()
	_ = tracer.Shutdown(context.Background())
	// Output:
	// ● support-bot 1.4.0  complete  500ms
	// │ spans 4 (4 complete)  llm calls 2  tokens 661 (640 in, 21 out)  cost $0.0012  ttft 50ms
	// │ user=u-42 channel=email
	// └─ agent support-bot  complete  400ms
	//    ├─ llm claude-sonnet-4  complete  50ms  provider=anthropic  tokens 312 (300 in, 12 out)  finish=tool_use
	//    ├─ tool lookup_order  complete  50ms  call=toolu_1
	//    └─ llm claude-sonnet-4  complete  100ms  provider=anthropic  streamed  tokens 349 (340 in, 9 out)  cost $0.0012  ttft 50ms  finish=end_turn
}

// With WithJSONLines every record is one JSON object on its own line, as
// records arrive: for tools such as jq.
func Example_jsonLines() {
	var out bytes.Buffer // os.Stdout by default
	exp := stdout.New(stdout.WithJSONLines(), stdout.WithoutPayloads(), stdout.WithWriter(&out))
	tracer, _ := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithFlushInterval(time.Hour))
	ctx, run := tracer.StartInstance(context.Background())
	_, span := tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "search"})
	span.End()
	run.End()
	_ = tracer.Shutdown(context.Background())

	// One JSON object per record; IDs and times vary, so show the rest.
	for line := range strings.Lines(out.String()) {
		var r struct {
			Kind     string `json:"kind"`
			Instance *struct {
				Status string `json:"status"`
			} `json:"instance"`
			Span struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"span"`
		}
		_ = json.Unmarshal([]byte(line), &r)
		if r.Instance != nil {
			fmt.Println(r.Kind, r.Instance.Status)
		} else {
			fmt.Println(r.Kind, r.Span.Type, r.Span.Status)
		}
	}
	// Output:
	// instance_started active
	// span_started tool complete
	// instance_ended complete
}
