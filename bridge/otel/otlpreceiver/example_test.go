package otlpreceiver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
)

// A receiver mounted at /v1/traces takes OTLP/HTTP export requests (here
// one in OTLP's JSON mapping, as a JavaScript SDK would send) and records
// their GenAI spans as agenttrace instances and spans.
func Example() {
	rec := agenttracetest.NewRecorder()
	tracer, err := agenttrace.New(agenttrace.WithExporter(rec))
	if err != nil {
		panic(err)
	}
	rcv := otlpreceiver.New(tracer)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", rcv)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	body := `{"resourceSpans":[{"scopeSpans":[{"spans":[{
		"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
		"name":"chat gpt-4o","kind":3,
		"startTimeUnixNano":"1772600767000000000","endTimeUnixNano":"1772600767250000000",
		"attributes":[
			{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
			{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
			{"key":"gen_ai.usage.input_tokens","value":{"intValue":"812"}},
			{"key":"gen_ai.usage.output_tokens","value":{"intValue":"64"}}]}]}]}]}`
	resp, err := http.Post(srv.URL+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	ctx := context.Background()
	_ = rcv.Shutdown(ctx)
	_ = tracer.Shutdown(ctx)
	for _, s := range rec.Spans() {
		fmt.Println(s.Type, s.Name, s.Status, s.Usage.PromptTokens, s.Usage.CompletionTokens, s.EndedAt.Sub(s.StartedAt))
	}
	// Output:
	// 200 OK
	// llm chat gpt-4o complete 812 64 250ms
}
