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

// agentTurn is a Chat Completions request of an agent's third turn, as
// openai-go sends it: a system prompt, three tool definitions with their
// JSON schemas, and two tool calls with their results in the history.
const agentTurn = `{"messages":[{"content":"You are a travel assistant. Use the tools to answer.","role":"system"},` +
	`{"content":"What's the weather and the local time in Paris and in Rome? Book a table if it is sunny.","role":"user"},` +
	`{"content":null,"role":"assistant","tool_calls":[{"id":"call_w1","function":{"arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}","name":"get_weather"},"type":"function"},` +
	`{"id":"call_t1","function":{"arguments":"{\"city\":\"Paris\"}","name":"local_time"},"type":"function"}]},` +
	`{"content":"{\"temp\":21,\"sky\":\"sunny\",\"wind_kph\":8}","role":"tool","tool_call_id":"call_w1"},` +
	`{"content":"{\"time\":\"19:42\",\"tz\":\"Europe/Paris\"}","role":"tool","tool_call_id":"call_t1"}],` +
	`"model":"gpt-4o-mini","temperature":0.2,"tool_choice":"auto","tools":[` +
	`{"function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string","description":"City name"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}},"type":"function"},` +
	`{"function":{"name":"local_time","description":"Local time in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},"type":"function"},` +
	`{"function":{"name":"book_table","description":"Book a restaurant table","parameters":{"type":"object","properties":{"city":{"type":"string"},"time":{"type":"string","description":"HH:MM"},"people":{"type":"integer","minimum":1}},"required":["city","time","people"]}},"type":"function"}]}`

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
	bodies["json-tools"] = bodies["json"]
	reqBodies := map[string]string{
		"json":   `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`,
		"stream": `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"stream":true}`,
		// An agent's third turn: three tools offered, two tool calls and
		// their results in the history.
		"json-tools": agentTurn,
	}
	for _, mode := range []string{"bare", "traced"} {
		for _, kind := range []string{"json", "json-tools", "stream"} {
			reqBody := reqBodies[kind]
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
