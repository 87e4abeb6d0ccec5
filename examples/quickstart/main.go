// Command quickstart traces a simulated travel-assistant agent, with no
// network and no account, and prints the trace: a planning LLM call that
// asks for two tools, the tool calls (the first times out once and is
// retried), and a streamed answer with its time to first token.
//
//	go run ./examples/quickstart
//	AGENTTRACE_EXPORTER=jsonl go run ./examples/quickstart
//
// The exporters come from the environment (package autoexport): a trace tree
// on standard output unless AGENTTRACE_EXPORTER says otherwise.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/autoexport"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run traces one agent run, then writes the answer, the run's summary and
// the tracer's statistics to w. The trace itself goes where the
// environment says: by default to w too.
func run(ctx context.Context, w io.Writer) error {
	exporters, desc, err := autoexport.FromEnv(autoexport.WithStdout(w))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "quickstart: tracing to %s\n\n", desc)

	// One tracer per program. Recording never blocks: records are batched
	// and exported in the background.
	tracer, err := agenttrace.New(
		agenttrace.WithAgent("quickstart-agent", "1.0.0"),
		agenttrace.WithExporter(exporters...),
	)
	if err != nil {
		return err
	}

	// One instance per agent run: every span started from ctx joins it.
	ctx, inst := tracer.StartInstance(ctx,
		agenttrace.WithInstanceName("Rainy afternoon in Lisbon"),
		agenttrace.WithUserID("user-1042"),
		agenttrace.WithChannel("web"),
		agenttrace.WithSessionID("sess-7f3a"),
	)
	answer, runErr := travelAgent(ctx, tracer, "Plan a rainy-day afternoon in Lisbon for two, under 60 EUR each.")
	if runErr != nil {
		inst.Fail(runErr)
	} else {
		inst.End() // the stdout exporter prints the instance's tree when it ends
	}

	// Shutdown exports what is still queued and stops the background work.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tracer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}

	sum, st := inst.Summary(), tracer.Stats()
	fmt.Fprintf(w, "\nanswer:  %s\n", answer)
	fmt.Fprintf(w, "summary: %d spans (%d complete, %d failed), %d LLM calls, tokens %s, cost %s, time to first token %s\n",
		sum.Spans.Total, sum.Spans.Complete, sum.Spans.Failed, sum.LLMCalls, tokens(sum.Usage), cost(sum.Cost),
		sum.TimeToFirstToken.Round(time.Millisecond))
	fmt.Fprintf(w, "stats:   spans started=%d ended=%d, records exported=%d (+%d coalesced), dropped=%d, queued=%d, export errors=%d\n",
		st.SpansStarted, st.SpansEnded, st.Exported, st.Coalesced, st.Dropped.Total(), st.Queued, st.Failed)
	return runErr
}

const (
	model  = "gpt-4o"
	system = "You are a travel assistant. Check the weather, find places that fit the budget, then answer in two sentences."
)

var tools = []agenttrace.ToolDefinition{
	{
		Name: "get_weather", Description: "Hourly forecast for a city",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"date":{"type":"string","format":"date"}},"required":["city"]}`),
	},
	{
		Name: "search_places", Description: "Find places matching a query, with prices",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"query":{"type":"string"},"max_price_eur":{"type":"number"}},"required":["city","query"]}`),
	},
}

// travelAgent is the agent: one agent span around a planning call, the
// tools it asks for and a streamed answer.
func travelAgent(ctx context.Context, tracer *agenttrace.Tracer, question string) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeAgent,
		agenttrace.AgentInput{Name: "travel-assistant", SessionID: "sess-7f3a", Model: model, Input: question})
	defer span.End()

	messages := []agenttrace.Message{{Role: "user", Content: question}}

	// Turn 1: the model plans and asks for two tool calls.
	plan, err := planCall(ctx, tracer, messages)
	if err != nil {
		span.Fail(err)
		return "", err
	}
	messages = append(messages, agenttrace.Message{Role: "assistant", ToolCalls: plan.ToolCalls})

	// The tools, each retried once if it fails.
	for _, call := range plan.ToolCalls {
		out, err := callTool(ctx, tracer, call, 1)
		if err != nil {
			out, err = callTool(ctx, tracer, call, 2) // the retry is a span of its own
		}
		if err != nil {
			span.Fail(err)
			return "", err
		}
		messages = append(messages, agenttrace.Message{Role: "tool", ToolCallID: call.ID, Content: out})
	}

	// Turn 2: the answer, streamed.
	answer, err := answerCall(ctx, tracer, messages)
	if err != nil {
		span.Fail(err)
		return "", err
	}
	span.SetResult(agenttrace.AgentOutput{Output: answer, StopReason: "stop", Turns: 2})
	return answer, nil
}

// planCall is an LLM call that returns tool calls.
func planCall(ctx context.Context, tracer *agenttrace.Tracer, messages []agenttrace.Message) (agenttrace.LLMResponse, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeLLM, agenttrace.LLMRequest{
		Provider: "openai", Model: model, System: system, Messages: messages, Tools: tools,
		Settings: &agenttrace.LLMSettings{Temperature: ptr(0.2), MaxTokens: ptr[int64](512)},
	}, agenttrace.WithName("plan"))
	defer span.End()

	sleep(ctx, 120*time.Millisecond) // the model thinks
	resp := agenttrace.LLMResponse{
		ID: "chatcmpl-B9x1", Model: "gpt-4o-2024-08-06", FinishReason: "tool_calls",
		ToolCalls: []agenttrace.ToolCall{
			{ID: "call_wx41", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Lisbon","date":"2026-03-14"}`)},
			{ID: "call_pl17", Name: "search_places", Arguments: json.RawMessage(`{"city":"Lisbon","query":"indoor, rainy day","max_price_eur":30}`)},
		},
		Usage: &agenttrace.Usage{PromptTokens: 412, CompletionTokens: 58},
		Cost:  &agenttrace.Cost{Prompt: 0.00103, Completion: 0.00058, Currency: "USD"},
	}
	span.SetResult(resp) // also records the usage and cost on the span
	return resp, nil
}

// callTool runs one attempt at a tool call in a tool span, under a timeout.
func callTool(ctx context.Context, tracer *agenttrace.Tracer, call agenttrace.ToolCall, attempt int) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeTool,
		agenttrace.ToolInput{Name: call.Name, CallID: call.ID, Arguments: call.Arguments})
	defer span.End()

	ctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	out, err := fakeTools[call.Name](ctx, attempt)
	if err != nil {
		span.Fail(err) // records the error's type and message
		return "", err
	}
	span.SetResult(agenttrace.ToolOutput{Output: out})
	return out, nil
}

// fakeTools stand in for real services. The weather service hangs on the
// first attempt, so that call times out.
var fakeTools = map[string]func(ctx context.Context, attempt int) (string, error){
	"get_weather": func(ctx context.Context, attempt int) (string, error) {
		delay := 80 * time.Millisecond
		if attempt == 1 {
			delay = time.Second
		}
		if !sleep(ctx, delay) {
			return "", fmt.Errorf("weather API: %w", ctx.Err())
		}
		return "Rain until 19:00, 16°C, wind 20 km/h", nil
	},
	"search_places": func(ctx context.Context, _ int) (string, error) {
		sleep(ctx, 60*time.Millisecond)
		return "Museu Nacional do Azulejo (8 EUR); LX Factory bookshop café (12 EUR); Time Out Market tasting menu (25 EUR)", nil
	},
}

// answerCall is a streamed LLM call: the first token arrives after a delay.
func answerCall(ctx context.Context, tracer *agenttrace.Tracer, messages []agenttrace.Message) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeLLM, agenttrace.LLMRequest{
		Provider: "openai", Model: model, System: system, Messages: messages, Stream: true,
	}, agenttrace.WithName("answer"))
	defer span.End()

	var answer strings.Builder
	sleep(ctx, 180*time.Millisecond) // waiting for the first chunk
	for i, chunk := range []string{
		"It will rain until evening, so stay indoors: ",
		"start at the Azulejo museum (8 EUR), browse the LX Factory bookshop café (12 EUR), ",
		"then share the Time Out Market tasting menu (25 EUR). ",
		"That is 45 EUR each.",
	} {
		if i == 0 {
			span.MarkFirstToken()
		}
		answer.WriteString(chunk)
		sleep(ctx, 40*time.Millisecond)
	}
	span.SetResult(agenttrace.LLMResponse{
		ID: "chatcmpl-B9x2", Model: "gpt-4o-2024-08-06", Text: answer.String(), FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 655, CompletionTokens: 41},
		Cost:  &agenttrace.Cost{Prompt: 0.00164, Completion: 0.00041, Currency: "USD"},
	})
	return answer.String(), nil
}

// sleep waits for d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func tokens(u *agenttrace.Usage) string {
	if u == nil {
		return "0"
	}
	return fmt.Sprintf("%d (%d in, %d out)", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
}

func cost(c *agenttrace.Cost) string {
	if c == nil {
		return "unknown"
	}
	if c.Currency == "USD" {
		return fmt.Sprintf("$%.4f", c.Total)
	}
	return fmt.Sprintf("%.4f %s", c.Total, c.Currency)
}

func ptr[T any](v T) *T { return &v }
