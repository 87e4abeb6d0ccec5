package openaitrace_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrace/agenttrace"
	openaitrace "github.com/agenttrace/agenttrace/instrument/openai"
)

// discard is an exporter that drops every batch: the benchmark measures
// recording, not exporting.
type discard struct{}

func (discard) Name() string                                      { return "discard" }
func (discard) Export(context.Context, []agenttrace.Record) error { return nil }
func (discard) Shutdown(context.Context) error                    { return nil }

// streamBody is a Chat Completions stream of n content chunks, the usage
// chunk and [DONE].
func streamBody(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"tok%d "},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n", i)
	}
	b.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":200,"total_tokens":220}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkInstrumented is the same openai-go call over loopback without
// (bare) and with (traced) the middleware: a JSON chat completion, and a
// stream of 200 chunks. Compare traced with bare in one run.
func BenchmarkInstrumented(b *testing.B) {
	jsonBody := []byte(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}`)
	sse := streamBody(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(sse)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jsonBody)
	}))
	defer srv.Close()

	tracer, err := agenttrace.New(agenttrace.WithExporter(discard{}))
	if err != nil {
		b.Fatal(err)
	}
	defer tracer.Shutdown(context.Background())
	params := openai.ChatCompletionNewParams{Model: openai.ChatModelGPT4oMini, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello!")}}

	for _, mode := range []string{"bare", "traced"} {
		opts := []option.RequestOption{option.WithBaseURL(srv.URL + "/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0)}
		if mode == "traced" {
			opts = append(opts, openaitrace.WithTracing(tracer))
		}
		client := openai.NewClient(opts...)
		ctx := context.Background()
		b.Run(mode+"/json", func(b *testing.B) {
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := client.Chat.Completions.New(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode+"/stream", func(b *testing.B) {
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				s := client.Chat.Completions.NewStreaming(ctx, params)
				n := 0
				for s.Next() {
					n++
				}
				if s.Err() != nil || n != 202 {
					b.Fatal(s.Err(), n)
				}
				_ = s.Close()
			}
		})
	}
}

// cpuPerOp reports the process's CPU time (user + system, client and
// in-process server together) per operation as cpu-ns/op: on a shared
// machine it is steadier than wall time.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
