package llmhttp

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// sseEvents frames data through an SSE framer in pieces cut at the given
// points and returns the events it dispatched.
func sseEvents(data []byte, cuts []int) []string {
	var got []string
	f := &sseFramer{
		emit: func(name, data []byte) { got = append(got, string(name)+"\x00"+string(data)) },
		drop: func() { got = append(got, "dropped") },
	}
	prev := 0
	for _, k := range cuts {
		if k > prev && k < len(data) {
			f.write(data[prev:k])
			prev = k
		}
	}
	f.write(data[prev:])
	f.end(true)
	return got
}

func FuzzSSEFramer(f *testing.F) {
	f.Add([]byte("event: a\ndata: {\"x\":1}\n\ndata: [DONE]\n\n"), uint16(3), uint16(9))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: comment\rdata:c\r\r"), uint16(1), uint16(20))
	f.Add([]byte("data"), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		whole := sseEvents(data, nil)
		cut := sseEvents(data, []int{int(a) % (len(data) + 1), int(b) % (len(data) + 1)})
		if len(whole) != len(cut) {
			t.Fatalf("cutting the body changed the events: %q vs %q", whole, cut)
		}
		for i := range whole {
			if whole[i] != cut[i] {
				t.Fatalf("event %d: %q vs %q", i, whole[i], cut[i])
			}
		}
	})
}

// FuzzCodecs feeds arbitrary bytes to every codec, as events and as whole
// bodies: nothing may panic, and the parse must not hang.
func FuzzCodecs(f *testing.F) {
	for _, s := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi\u00e9\ud83d\ude00"}}`,
		`{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}],"usage":{"prompt_tokens":1}}`,
		`{"type":"response.completed","response":{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"t"}]}],"usage":{"input_tokens":2}}}`,
		`{"candidates":[{"content":{"parts":[{"text":"a","thought":true},{"functionCall":{"name":"f","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3}}`,
		`[{"a":"]"},{"b":[1,2,{"c":"\"}"}]}]`,
		`{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, a := range []api{apiChat, apiResponses, apiAnthropic, apiGemini} {
			c := &call{cfg: &config{capture: CaptureFull, maxContent: 1 << 10, prices: DefaultPrices()}, budget: 1 << 10}
			c.route.api = a
			c.event(nil, data)
			c.document(bytes.Clone(data))
			af := &arrayFramer{emit: c.event, drop: c.dropped}
			af.write(data)
			_ = c.result()
			_ = parseAPIError(data)
			_ = parseRequest(c.cfg, route{api: a}, data)
		}
	})
}

// FuzzParseRequest: any request body, of every API and in every capture mode,
// is parsed without a panic, and the parsed request is encodable JSON.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{\"a\":\"\\u00e9\"}"}}]},{"role":"tool","tool_call_id":"c","content":"x\ny"}],"tools":[{"type":"function","function":{"name":"f","description":"d\"q","parameters":{"type":"object"}}}]}`))
	f.Add([]byte(`{"tools":[{"function":{"description":null}}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`))
	f.Add([]byte(`{"messages":[{"tool_calls":null}],"tools":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, api := range []api{apiChat, apiResponses, apiAnthropic, apiGemini} {
			for _, mode := range []CaptureMode{CaptureOff, CaptureMetadata, CaptureFull} {
				cfg := newConfig([]Option{WithCapture(mode), WithMaxContentBytes(64)})
				p := parseRequest(cfg, route{api: api}, body)
				if _, err := json.Marshal(p.req); err != nil {
					t.Fatalf("api %d, %v: %v", api, mode, err)
				}
			}
		}
	})
}

// The request's captured content is cut to the budget on a UTF-8 boundary,
// as the framework integrations' Content cuts it, and marked truncated.
func TestRequestContentCutOnRuneBoundary(t *testing.T) {
	cfg := newConfig([]Option{WithCapture(CaptureFull), WithMaxContentBytes(5)})
	p := parseRequest(cfg, route{api: apiChat}, []byte(`{"model":"m","messages":[{"role":"user","content":"ééééé"}]}`))
	require.Len(t, p.req.Messages, 1)
	got := p.req.Messages[0].Content
	require.True(t, utf8.ValidString(got), "%q", got)
	require.Equal(t, "éé", got)
	require.True(t, p.truncated)
	require.Equal(t, 4, p.contentUsed)
}
