package otelbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
)

// The Exporter reads payloads without checking every byte (they come from
// agenttrace, which validated them), but an Exporter can be handed any
// record: whatever the payload and result bytes, of any span type and
// with content capture on or off, it exports one span and does not panic.
func FuzzExporterPayloads(f *testing.F) {
	for _, s := range [][2]string{
		{`{"provider":"openai","model":"gpt-4o","settings":{"temperature":0.2},"stream":true}`, `{"model":"m","finish_reason":"stop"}`},
		{`{"tool_name":"t","call_id":"c","arguments":{"a":[1,2]}}`, `{"output":"ok","is_error":true}`},
		{`{"agent_name":"a","input":"x","model":"m"}`, `{"output":{"o":1},"stop_reason":"end","turns":2,"token_usage":{"prompt_tokens":1}}`},
		{`{"a":{"b":{"c":{"d":{"e":1}}}},"s":[1,"x"]}`, `"plain"`},
		{`{"model":"\u00e9\"`, `{"id":`}, {`[`, `{"value":{]}`}, {``, `null`}, {"{\"model\":\"\xff\"}", `{"a":1,}`},
	} {
		for typ := range 4 {
			f.Add([]byte(s[0]), []byte(s[1]), uint8(typ), false)
			f.Add([]byte(s[0]), []byte(s[1]), uint8(typ), true)
		}
	}
	types := []string{agenttrace.TypeLLM, agenttrace.TypeTool, agenttrace.TypeAgent, "chain"}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload, result []byte, typ uint8, content bool) {
		sr, tp := newRecordingProvider(t, sdktrace.WithIDGenerator(otelbridge.IDGenerator()))
		exp := otelbridge.NewExporter(tp, otelbridge.WithContentCapture(content))
		inst, span := newID(t0, 1), newID(t0, 2)
		d := agenttrace.SpanData{ID: span, InstanceID: inst, Type: types[int(typ)%len(types)], Status: agenttrace.StatusComplete,
			CreatedAt: t0, StartedAt: t0, EndedAt: t0.Add(time.Second), Payload: payload, Result: result}
		require.NoError(t, exp.Export(context.Background(), []agenttrace.Record{
			{Kind: agenttrace.InstanceStarted, Instance: &agenttrace.InstanceData{ID: inst, Status: agenttrace.StatusActive, StartedAt: t0}},
			{Kind: agenttrace.SpanStarted, Span: d},
		}))
		require.Len(t, sr.Ended(), 1, "the span, ended; the instance's root is still open")
	})
}
