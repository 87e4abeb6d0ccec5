// Command quickstart runs a simulated travel-assistant agent, with no network
// and no account, and prints its trace: a planning LLM call, two tool calls
// (one fails once and is retried), and a final streamed LLM call with time
// to first token.
//
//	go run ./examples/quickstart
//
// The exporter comes from the environment (see package autoexport): a trace
// tree on standard output unless AGENTTRACE_EXPORTER says otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/autoexport"
)

func main() {
	exporters, desc, err := autoexport.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := run(context.Background(), os.Stdout, desc, exporters...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, desc string, exporters ...agenttrace.Exporter) error {
	tracer, err := agenttrace.New(
		agenttrace.WithAgent("quickstart-agent", "1.0.0"),
		agenttrace.WithExporter(exporters...),
	)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "agenttrace quickstart: exporting to %s\n\n", desc)

	ctx, inst := tracer.StartInstance(ctx,
		agenttrace.WithUserID("user-1042"), agenttrace.WithChannel("web"), agenttrace.WithSessionID("sess-7f3a"))
	answer, err := travelAgent(ctx, tracer, "Plan a rainy-day afternoon in Lisbon for two, under 60 EUR.")
	if err != nil {
		inst.Fail(err)
	} else {
		inst.End()
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tracer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}

	s := inst.Summary()
	st := tracer.Stats()
	fmt.Fprintf(w, "\nanswer: %s\n", answer)
	var tokens int64
	var cost float64
	if s.Usage != nil {
		tokens = s.Usage.TotalTokens
	}
	if s.Cost != nil {
		cost = s.Cost.Total
	}
	fmt.Fprintf(w, "summary: %d spans (%d complete, %d failed), %d LLM calls, %d tokens, cost $%.4f, ttft %s\n",
		s.Spans.Total, s.Spans.Complete, s.Spans.Failed, s.LLMCalls, tokens, cost,
		s.TimeToFirstToken.Round(time.Millisecond))
	fmt.Fprintf(w, "stats: spans started=%d ended=%d  records recorded=%d exported=%d coalesced=%d failed=%d dropped=%d queued=%d\n",
		st.SpansStarted, st.SpansEnded, st.Recorded, st.Exported, st.Coalesced, st.Failed, st.Dropped.Total(), st.Queued)
	return err
}

var tools = []agenttrace.ToolDefinition{
	{Name: "weather", Description: "Forecast for a city and date",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"date":{"type":"string"}}}`)},
	{Name: "search_places", Description: "Find places matching a query",
		Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"},"max_price_eur":{"type":"number"}}}`)},
}

// travelAgent is the agent: one root span, a plan, tools, an answer.
func travelAgent(ctx context.Context, tracer *agenttrace.Tracer, question string) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeAgent,
		agenttrace.AgentInput{Name: "travel-assistant", SessionID: "sess-7f3a", Model: "gpt-4o", Input: question})
	defer span.End()

	system := "You are a travel assistant. Use tools, then answer briefly."
	messages := []agenttrace.Message{{Role: "user", Content: question}}

	// 1. Planning call: the model asks for two tools.
	plan, err := agenttrace.Run(ctx, tracer, agenttrace.TypeLLM, agenttrace.LLMRequest{
		Operation: "chat", Provider: "openai", Model: "gpt-4o", System: system, Messages: messages, Tools: tools,
		Settings: &agenttrace.LLMSettings{Temperature: ptr(0.2), MaxTokens: ptr(int64(512))},
	}, func(ctx context.Context, span *agenttrace.Span) (agenttrace.LLMResponse, error) {
		sleep(ctx, 120*time.Millisecond)
		return agenttrace.LLMResponse{
			ID: "chatcmpl-9x1", Model: "gpt-4o-2024-08-06", FinishReason: "tool_calls",
			ToolCalls: []agenttrace.ToolCall{
				{ID: "call_wx", Name: "weather", Arguments: json.RawMessage(`{"city":"Lisbon","date":"today"}`)},
				{ID: "call_pl", Name: "search_places", Arguments: json.RawMessage(`{"query":"indoor rainy day","max_price_eur":30}`)},
			},
			Usage: &agenttrace.Usage{PromptTokens: 412, CompletionTokens: 58},
			Cost:  &agenttrace.Cost{Prompt: 0.00103, Completion: 0.00058},
		}, nil
	}, agenttrace.WithName("chat gpt-4o (plan)"))
	if err != nil {
		return "", err
	}

	// 2. Tools. The weather service times out once; the agent retries.
	var results []string
	for _, call := range plan.ToolCalls {
		var out string
		for attempt := 1; ; attempt++ {
			out, err = callTool(ctx, tracer, call, attempt)
			if err == nil || attempt == 2 {
				break
			}
		}
		if err != nil {
			return "", err
		}
		results = append(results, out)
		messages = append(messages, agenttrace.Message{Role: "tool", ToolCallID: call.ID, Content: out})
	}

	// 3. Final answer, streamed.
	answer, err := streamAnswer(ctx, tracer, system, messages)
	if err != nil {
		span.Fail(err)
		return "", err
	}
	span.SetResult(agenttrace.AgentOutput{Output: answer, StopReason: "end_turn", Turns: 2})
	return answer, nil
}

var errTimeout = errors.New("weather service: upstream timeout after 100ms")

// callTool runs one tool call in a tool span.
func callTool(ctx context.Context, tracer *agenttrace.Tracer, call agenttrace.ToolCall, attempt int) (string, error) {
	return agenttrace.Run(ctx, tracer, agenttrace.TypeTool,
		agenttrace.ToolInput{Name: call.Name, CallID: call.ID, Arguments: call.Arguments},
		func(ctx context.Context, span *agenttrace.Span) (string, error) {
			switch call.Name {
			case "weather":
				sleep(ctx, 100*time.Millisecond)
				if attempt == 1 {
					return "", errTimeout
				}
				out := "Rain all afternoon, 16°C"
				span.SetResult(agenttrace.ToolOutput{Output: out})
				return out, nil
			default:
				sleep(ctx, 60*time.Millisecond)
				places := []map[string]any{
					{"name": "Museu Nacional do Azulejo", "price_eur": 8},
					{"name": "LX Factory bookshop café", "price_eur": 12},
					{"name": "Time Out Market tasting", "price_eur": 25},
				}
				span.SetResult(agenttrace.ToolOutput{Output: places})
				return "Azulejo museum (8 EUR), LX Factory café (12 EUR), Time Out Market (25 EUR)", nil
			}
		})
}

// streamAnswer runs the final streamed LLM call, marking the first token.
func streamAnswer(ctx context.Context, tracer *agenttrace.Tracer, system string, messages []agenttrace.Message) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeLLM, agenttrace.LLMRequest{
		Operation: "chat", Provider: "openai", Model: "gpt-4o", System: system, Messages: messages, Stream: true,
	}, agenttrace.WithName("chat gpt-4o (answer)"))
	defer span.End()

	sleep(ctx, 180*time.Millisecond) // waiting for the first chunk
	span.MarkFirstToken()
	answer := ""
	for _, chunk := range []string{"Rain all afternoon, so stay in: ", "the Azulejo museum (8 EUR), ",
		"coffee at LX Factory (12 EUR), ", "then dinner at Time Out Market (25 EUR). Total 45 EUR each."} {
		sleep(ctx, 40*time.Millisecond)
		answer += chunk
	}
	span.SetResult(agenttrace.LLMResponse{
		ID: "chatcmpl-9x2", Model: "gpt-4o-2024-08-06", Text: answer, FinishReason: "stop",
		Usage: &agenttrace.Usage{PromptTokens: 655, CompletionTokens: 41},
		Cost:  &agenttrace.Cost{Prompt: 0.00164, Completion: 0.00041},
	})
	return answer, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func ptr[T any](v T) *T { return &v }
