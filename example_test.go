package agenttrace_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agenttrace/agenttrace"
)

// printer prints each record's kind, span type and status: no IDs or times.
type printer struct{}

func (printer) Export(_ context.Context, recs []agenttrace.Record) error {
	for _, r := range recs {
		if r.Instance != nil {
			fmt.Println(r.Kind, r.Instance.Status)
			continue
		}
		line := fmt.Sprint(r.Kind, " ", r.Span.Type, " ", r.Span.Status)
		if r.Span.Result != nil {
			line += " " + string(r.Span.Result)
		}
		fmt.Println(line)
	}
	return nil
}

func (printer) Shutdown(context.Context) error { return nil }

type chatClient struct{ fail bool }

func (c chatClient) Chat(context.Context, string) (string, error) {
	if c.fail {
		return "", errors.New("rate limited")
	}
	return "Hello!", nil
}

// The README idiom: Start, defer End, Fail on error, SetResult on success.
func Example() {
	tracer, _ := agenttrace.New(agenttrace.WithAgent("support-bot", "1.4.0"), agenttrace.WithExporter(printer{}))
	defer tracer.Shutdown(context.Background())

	ctx, run := tracer.StartInstance(context.Background(), agenttrace.WithUserID("user-42"))
	ask := func(ctx context.Context, client chatClient) error {
		ctx, span := tracer.Start(ctx, "llm", agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o",
			Messages: []agenttrace.Message{{Role: "user", Content: "Hi"}}})
		defer span.End()
		text, err := client.Chat(ctx, "Hi")
		if err != nil {
			span.Fail(err)
			return err
		}
		span.SetResult(agenttrace.LLMResponse{Text: text, FinishReason: "stop",
			Usage: &agenttrace.Usage{PromptTokens: 8, CompletionTokens: 2}})
		return nil
	}
	_ = ask(ctx, chatClient{fail: true})
	_ = ask(ctx, chatClient{})
	run.End()
	_ = tracer.Flush(context.Background())

	s := run.Summary()
	fmt.Printf("spans=%d failed=%d tokens=%d\n", s.Spans.Total, s.Spans.Failed, s.Usage.TotalTokens)
	// Output:
	// instance_started active
	// span_started llm failed
	// span_started llm complete {"text":"Hello!","finish_reason":"stop","token_usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}
	// instance_ended complete
	// spans=2 failed=1 tokens=10
}

// Run traces a function: its error fails the span, its value is the result.
func ExampleRun() {
	tracer, _ := agenttrace.New(agenttrace.WithExporter(printer{}))

	n, err := agenttrace.Run(context.Background(), tracer, "tool", agenttrace.ToolInput{Name: "count_words"},
		func(ctx context.Context, span *agenttrace.Span) (int, error) {
			return len(strings.Fields("the quick brown fox")), nil
		})
	fmt.Println(n, err)
	_ = tracer.Shutdown(context.Background()) // ends the default instance
	// Output:
	// 4 <nil>
	// instance_started active
	// span_started tool complete {"value":4}
	// instance_ended complete
}

// Pending spans model queued work: Activate when it starts, Cancel if it
// never does.
func ExampleTracer_StartPending() {
	tracer, _ := agenttrace.New(agenttrace.WithExporter(printer{}))

	_, used := tracer.StartPending(context.Background(), "tool", agenttrace.ToolInput{Name: "search"})
	_, skipped := tracer.StartPending(context.Background(), "tool", agenttrace.ToolInput{Name: "fetch"})
	used.Activate()
	used.End()
	skipped.Cancel("the answer was already known")
	_ = tracer.Shutdown(context.Background())
	// Output:
	// instance_started active
	// span_started tool complete
	// span_started tool cancelled
	// instance_ended complete
}

// A redactor sees every payload before it is stored.
func ExampleWithRedactor() {
	redact := func(spanType string, field agenttrace.PayloadField, payload []byte) []byte {
		return []byte(strings.ReplaceAll(string(payload), "4111-1111-1111-1111", "[card]"))
	}
	tracer, _ := agenttrace.New(agenttrace.WithRedactor(redact))
	defer tracer.Shutdown(context.Background())

	_, span := tracer.Start(context.Background(), "tool", agenttrace.ToolInput{Name: "charge",
		Arguments: map[string]string{"card": "4111-1111-1111-1111"}})
	span.End()
	fmt.Println(string(span.Data().Payload))
	// Output:
	// {"tool_name":"charge","arguments":{"card":"[card]"}}
}

// Register span types; the schema version's identifier follows its content.
func ExampleWithSpanTypes() {
	refund := agenttrace.SpanType{
		Name:         "billing:refund",
		Title:        "Refund",
		ParamsSchema: []byte(`{"type":"object","properties":{"order_id":{"type":"string"}}}`),
		DataRisk:     &agenttrace.DataRisk{ActionProfile: agenttrace.ActionProfile{FinancialTransactions: agenttrace.RiskAllowed}},
	}
	a, _ := agenttrace.New(agenttrace.WithSpanTypes(refund))
	b, _ := agenttrace.New(agenttrace.WithSpanTypes(refund))
	defer a.Shutdown(context.Background())
	defer b.Shutdown(context.Background())

	sv := a.SchemaVersion()
	var names []string
	for _, st := range sv.SpanTypes {
		names = append(names, st.Name)
	}
	fmt.Println(strings.Join(names, " "))
	fmt.Println(sv.ExternalIdentifier == b.SchemaVersion().ExternalIdentifier)
	// Output:
	// agent billing:refund chain llm tool
	// true
}
