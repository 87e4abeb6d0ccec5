package llmhttp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

type discard struct{}

func (discard) Name() string                                      { return "discard" }
func (discard) Export(context.Context, []agenttrace.Record) error { return nil }
func (discard) Shutdown(context.Context) error                    { return nil }

// memTransport answers every request with body, from memory.
type memTransport struct {
	ctype string
	body  []byte
}

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {m.ctype}}, Body: io.NopCloser(bytes.NewReader(m.body)), Request: r}, nil
}

func chatStream(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"tok%d "},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n", i)
	}
	b.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":200,"total_tokens":220}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkTransport isolates the transport's own cost: the same request
// answered from memory (no network, no SDK), read line by line as SDKs
// do, without (bare) and with (traced) llmhttp. stream is 200 chunks.
func BenchmarkTransport(b *testing.B) {
	tracer, err := agenttrace.New(agenttrace.WithExporter(discard{}))
	if err != nil {
		b.Fatal(err)
	}
	defer tracer.Shutdown(context.Background())
	bodies := map[string]memTransport{
		"json":   {"application/json", fixture(b, "openai_chat.json")},
		"stream": {"text/event-stream", chatStream(200)},
	}
	reqBody := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`
	for _, mode := range []string{"bare", "traced"} {
		for _, kind := range []string{"json", "stream"} {
			var rt http.RoundTripper = bodies[kind]
			if mode == "traced" {
				rt = llmhttp.NewTransport(tracer, rt)
			}
			client := &http.Client{Transport: rt}
			b.Run(mode+"/"+kind, func(b *testing.B) {
				b.ReportAllocs()
				start := cpuTime()
				defer func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }()
				for b.Loop() {
					req, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(reqBody))
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					sc := bufio.NewScanner(res.Body)
					for sc.Scan() {
					}
					_ = res.Body.Close()
				}
			})
		}
	}
}

// cpuTime is the process's CPU time (user + system): on a shared machine
// cpu-ns/op is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
