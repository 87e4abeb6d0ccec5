package llmhttp

import (
	"bytes"
	"testing"
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
