package llmhttp_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

func TestResolveCapture(t *testing.T) {
	for v, want := range map[string]llmhttp.CaptureMode{
		"": llmhttp.CaptureMetadata, "true": llmhttp.CaptureFull, "SPAN_ONLY": llmhttp.CaptureFull,
		"span_and_event": llmhttp.CaptureFull, "false": llmhttp.CaptureMetadata, "NO_CONTENT": llmhttp.CaptureMetadata,
	} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(llmhttp.EnvCaptureContent, v)
			assert.Equal(t, want, llmhttp.ResolveCapture(llmhttp.CaptureDefault))
			assert.Equal(t, want, llmhttp.NewContent(llmhttp.CaptureDefault, 0).Mode())
			assert.Equal(t, llmhttp.CaptureOff, llmhttp.ResolveCapture(llmhttp.CaptureOff), "an explicit mode wins")
		})
	}
}

// The three modes: full records the text, metadata the structure and
// sizes, off nothing.
func TestContentModes(t *testing.T) {
	args := `{"city":"Paris"}`
	for _, mode := range []llmhttp.CaptureMode{llmhttp.CaptureOff, llmhttp.CaptureMetadata, llmhttp.CaptureFull} {
		t.Run(mode.String(), func(t *testing.T) {
			c := llmhttp.NewContent(mode, 0)
			var m agenttrace.Message
			c.MessageText(&m, "Hello")
			c.Part(&m, agenttrace.ContentPart{Type: agenttrace.PartThinking, Text: "hmm"})
			switch mode {
			case llmhttp.CaptureFull:
				assert.True(t, c.Full())
				assert.Equal(t, "Hello", m.Content)
				assert.Equal(t, []agenttrace.ContentPart{{Type: agenttrace.PartThinking, Text: "hmm"}}, m.Parts)
				assert.Equal(t, "Hi", c.Text("Hi"))
				assert.JSONEq(t, args, string(c.JSON(args)))
				assert.Equal(t, json.RawMessage(`{"a":1}`), c.Value(map[string]int{"a": 1}))
			case llmhttp.CaptureMetadata:
				assert.True(t, c.Structure())
				assert.False(t, c.Full())
				assert.Empty(t, m.Content)
				assert.Equal(t, []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 5}, {Type: agenttrace.PartThinking, Size: 3}}, m.Parts)
			case llmhttp.CaptureOff:
				assert.False(t, c.Structure())
				assert.Empty(t, m.Content)
				assert.Empty(t, m.Parts)
			}
			if mode != llmhttp.CaptureFull {
				assert.Empty(t, c.Text("Hi"))
				assert.Nil(t, c.JSON(args))
				assert.Nil(t, c.Value(map[string]int{"a": 1}))
			}
			assert.False(t, c.Truncated())
			assert.Nil(t, c.Mark(nil))
		})
	}
}

// The budget is shared by everything captured for the call; a cut is at a
// UTF-8 boundary, a cut JSON value becomes a JSON string, and the cut is
// marked and counted once.
func TestContentBudget(t *testing.T) {
	before := llmhttp.ReadStats().ContentTruncated
	c := llmhttp.NewContent(llmhttp.CaptureFull, 10)
	assert.Equal(t, "12345", c.Text("12345"))
	got := c.Text("ab€€") // 2 + 3 + 3 bytes, 5 left: "ab€"
	assert.Equal(t, "ab€", got)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, c.Truncated())
	assert.Empty(t, c.Text("more"), "nothing left")
	raw := c.JSON(`{"k":"v"}`)
	var s string
	require.NoError(t, json.Unmarshal(raw, &s), "a cut JSON value is kept as a JSON string")
	assert.Empty(t, s)
	assert.Equal(t, map[string]any{"content_truncated": true}, c.Mark(nil))
	c.Mark(map[string]any{})
	assert.Equal(t, before+1, llmhttp.ReadStats().ContentTruncated)

	v := llmhttp.NewContent(llmhttp.CaptureFull, 8).Value(map[string]string{"key": "value"})
	assert.Equal(t, `{"key":"`, v, "a value over the budget is its cut encoding")
	bad := llmhttp.NewContent(llmhttp.CaptureFull, 0)
	ch := make(chan int)
	assert.Equal(t, ch, bad.Value(ch), "a value that cannot be encoded is left to the tracer")
	assert.Equal(t, `"not json`, string(llmhttp.NewContent(llmhttp.CaptureFull, 0).JSON(`not json`))[:9])
}

func ExampleContent() {
	c := llmhttp.NewContent(llmhttp.CaptureMetadata, 0)
	var m agenttrace.Message
	c.MessageText(&m, "What is the weather in Paris?")
	fmt.Printf("%q %+v\n", m.Content, m.Parts)
	// Output: "" [{Type:text Text: MIMEType: URL: Size:29}]
}
