package otlpreceiver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/agenttrace/agenttrace/bridge/otel/otlpreceiver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// fixture is a receiver on a loopback HTTP server recording into a tracer
// whose records an agenttracetest.Recorder keeps.
type fixture struct {
	rcv *otlpreceiver.Receiver
	srv *httptest.Server
	tr  *agenttrace.Tracer
	rec *agenttracetest.Recorder
}

func newFixture(t *testing.T, opts ...otlpreceiver.Option) *fixture {
	t.Helper()
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	rcv := otlpreceiver.New(tr, opts...)
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", rcv)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, rcv.Shutdown(ctx))
	})
	return &fixture{rcv: rcv, srv: srv, tr: tr, rec: rec}
}

// flush records what the receiver still buffers and hands everything to
// the recorder.
func (f *fixture) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.rcv.Flush(ctx))
}

// provider returns an SDK provider exporting over OTLP/HTTP (protobuf) to
// the fixture's server.
func (f *fixture) provider(t *testing.T, opts ...otlptracehttp.Option) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), append([]otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(f.srv.URL + "/v1/traces"),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}, opts...)...)
	require.NoError(t, err)
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
}

func (f *fixture) post(t *testing.T, contentType, encoding string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/traces", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const (
	inMsgs  = `[{"role":"user","parts":[{"type":"text","content":"where is my order?"}]}]`
	outMsgs = `[{"role":"assistant","parts":[{"type":"text","content":"It has shipped."}],"finish_reason":"stop"}]`
)

// genAIRun records, with plain OTel instrumentation, an agent run in the
// GenAI conventions: invoke_agent > chat, execute_tool (> an HTTP call the
// mapping skips), and a chat that fails. Children end before parents.
func genAIRun(ctx context.Context, tr trace.Tracer, t0 time.Time) {
	at := func(d time.Duration) trace.SpanEventOption { return trace.WithTimestamp(t0.Add(d)) }
	ctx, agent := tr.Start(ctx, "invoke_agent planner", at(0), trace.WithAttributes(
		otelbridge.KeyOperationName.String("invoke_agent"), otelbridge.KeyAgentName.String("planner"),
		otelbridge.KeyConversationID.String("conv-1"), otelbridge.KeyUserID.String("u-1")))
	_, chat := tr.Start(ctx, "chat gpt-4o", at(time.Millisecond), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyProviderName.String("openai"),
		otelbridge.KeyRequestModel.String("gpt-4o"), otelbridge.KeyRequestTemperature.Float64(0.2)))
	chat.SetAttributes(
		otelbridge.KeyInputMessages.String(inMsgs), otelbridge.KeyOutputMessages.String(outMsgs),
		otelbridge.KeyResponseModel.String("gpt-4o-2024-08-06"),
		otelbridge.KeyResponseFinishReasons.StringSlice([]string{"stop"}),
		otelbridge.KeyUsageInputTokens.Int64(120), otelbridge.KeyUsageOutputTokens.Int64(30),
		otelbridge.KeyUsageCacheReadInputTokens.Int64(100),
		otelbridge.KeyResponseTimeToFirstChunk.Float64(0.02))
	chat.End(at(50 * time.Millisecond))
	tctx, tool := tr.Start(ctx, "execute_tool lookup_order", at(60*time.Millisecond), trace.WithAttributes(
		otelbridge.KeyOperationName.String("execute_tool"), otelbridge.KeyToolName.String("lookup_order"),
		otelbridge.KeyToolCallID.String("call_1"), otelbridge.KeyToolCallArguments.String(`{"id":"A1"}`)))
	_, get := tr.Start(tctx, "GET /orders/A1", at(61*time.Millisecond), trace.WithAttributes(attribute.Int("http.status", 200)))
	get.End(at(70 * time.Millisecond))
	tool.SetAttributes(otelbridge.KeyToolCallResult.String(`{"status":"shipped"}`))
	tool.End(at(80 * time.Millisecond))
	_, bad := tr.Start(ctx, "chat gpt-4o-mini", at(90*time.Millisecond), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyProviderName.String("openai"),
		otelbridge.KeyRequestModel.String("gpt-4o-mini"), otelbridge.KeyUsageInputTokens.Int64(5)))
	bad.SetStatus(codes.Error, "rate limited")
	bad.SetAttributes(otelbridge.KeyErrorType.String("429"))
	bad.End(at(95 * time.Millisecond))
	agent.End(at(100 * time.Millisecond))
}

func spansByName(t *testing.T, rec *agenttracetest.Recorder) map[string]agenttrace.SpanData {
	t.Helper()
	m := map[string]agenttrace.SpanData{}
	for _, s := range rec.Spans() {
		require.NotContains(t, m, s.Name, "duplicate span name")
		m[s.Name] = s
	}
	return m
}

// checkGenAIRun asserts what genAIRun lands as.
func checkGenAIRun(t *testing.T, rec *agenttracetest.Recorder, t0 time.Time) {
	t.Helper()
	insts := rec.Instances()
	require.Len(t, insts, 1)
	inst := insts[0]
	assert.Equal(t, t0, inst.StartedAt.UTC())
	assert.Equal(t, t0.Add(100*time.Millisecond), inst.EndedAt.UTC())
	assert.Equal(t, "conv-1", inst.SessionID)
	assert.Equal(t, "u-1", inst.UserID)
	assert.Equal(t, agenttrace.StatusComplete, inst.Status)

	by := spansByName(t, rec)
	require.Len(t, by, 4, "the HTTP span is skipped")
	agent, chat, tool, bad := by["invoke_agent planner"], by["chat gpt-4o"], by["execute_tool lookup_order"], by["chat gpt-4o-mini"]
	assert.Equal(t, agenttrace.TypeAgent, agent.Type)
	assert.True(t, agent.ParentID.IsZero())
	for _, s := range []agenttrace.SpanData{chat, tool, bad} {
		assert.Equal(t, agent.ID, s.ParentID, s.Name)
		assert.Equal(t, inst.ID, s.InstanceID, s.Name)
	}
	assert.Equal(t, agenttrace.TypeLLM, chat.Type)
	assert.Equal(t, agenttrace.StatusComplete, chat.Status)
	require.NotNil(t, chat.Usage)
	assert.Equal(t, int64(120), chat.Usage.PromptTokens)
	assert.Equal(t, int64(30), chat.Usage.CompletionTokens)
	assert.Equal(t, int64(100), chat.Usage.Details["cache_read"])
	assert.Equal(t, 20*time.Millisecond, chat.TimeToFirstToken())
	assert.Equal(t, t0.Add(time.Millisecond), chat.StartedAt.UTC())
	assert.Equal(t, t0.Add(50*time.Millisecond), chat.EndedAt.UTC())
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(chat.Payload, &req))
	assert.Equal(t, "openai", req.Provider)
	assert.Equal(t, "gpt-4o", req.Model)
	require.Len(t, req.Messages, 1, "content is copied by default")
	assert.Equal(t, "where is my order?", req.Messages[0].Content)
	var resp agenttrace.LLMResponse
	require.NoError(t, json.Unmarshal(chat.Result, &resp))
	assert.Equal(t, "It has shipped.", resp.Text)
	assert.Equal(t, "stop", resp.FinishReason)

	assert.Equal(t, agenttrace.TypeTool, tool.Type)
	var in agenttrace.ToolInput
	require.NoError(t, json.Unmarshal(tool.Payload, &in))
	assert.Equal(t, "lookup_order", in.Name)
	args, err := json.Marshal(in.Arguments)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"A1"}`, string(args))
	assert.JSONEq(t, `{"output":{"status":"shipped"}}`, string(tool.Result))

	assert.Equal(t, agenttrace.StatusFailed, bad.Status)
	require.NotNil(t, bad.Error)
	assert.Equal(t, "429", bad.Error.Type)
	assert.Equal(t, "rate limited", bad.Error.Message)
	require.NotNil(t, bad.Usage)
	assert.Equal(t, int64(5), bad.Usage.PromptTokens)
}

func TestSDKExporterProtobuf(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			f := newFixture(t)
			var opts []otlptracehttp.Option
			if gz {
				opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
			}
			tp := f.provider(t, opts...)
			t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			genAIRun(context.Background(), tp.Tracer("app"), t0)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, tp.Shutdown(ctx), "the SDK's export succeeds")
			f.flush(t)
			checkGenAIRun(t, f.rec, t0)
			st := f.rcv.Stats()
			assert.Equal(t, uint64(5), st.Spans)
			assert.Zero(t, st.Rejected)
			assert.Zero(t, st.Refused)
			assert.GreaterOrEqual(t, st.Requests, uint64(1))
		})
	}
}

// TestTraceAcrossRequests sends a trace's children and its root in
// separate requests: they make one instance, recorded when the root comes.
func TestTraceAcrossRequests(t *testing.T) {
	f := newFixture(t)
	tp := f.provider(t)
	tr := tp.Tracer("app")
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ctx, root := tr.Start(context.Background(), "invoke_agent a", trace.WithTimestamp(t0),
		trace.WithAttributes(otelbridge.KeyOperationName.String("invoke_agent")))
	_, chat := tr.Start(ctx, "chat m", trace.WithTimestamp(t0.Add(time.Millisecond)),
		trace.WithAttributes(otelbridge.KeyOperationName.String("chat"), otelbridge.KeyRequestModel.String("m")))
	chat.End(trace.WithTimestamp(t0.Add(2 * time.Millisecond)))
	ctx2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tp.ForceFlush(ctx2))
	require.NoError(t, f.tr.Flush(ctx2))
	assert.Empty(t, f.rec.Spans(), "the child waits for its root")
	root.End(trace.WithTimestamp(t0.Add(3 * time.Millisecond)))
	require.NoError(t, tp.Shutdown(ctx2))
	require.NoError(t, f.tr.Flush(ctx2))
	require.Len(t, f.rec.Instances(), 1)
	by := spansByName(t, f.rec)
	require.Len(t, by, 2)
	assert.Equal(t, by["invoke_agent a"].ID, by["chat m"].ParentID)
	assert.GreaterOrEqual(t, f.rcv.Stats().Requests, uint64(2))
}

// TestRemoteParent: a root continued from another process (its parent
// flagged remote by the SDK) is recorded at once, under that trace parent.
func TestRemoteParent(t *testing.T) {
	f := newFixture(t)
	tp := f.provider(t)
	carrier := propagation.MapCarrier{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier)
	_, s := tp.Tracer("app").Start(ctx, "chat m", trace.WithAttributes(otelbridge.KeyOperationName.String("chat")))
	s.End()
	ctx2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tp.Shutdown(ctx2))
	require.NoError(t, f.tr.Flush(ctx2)) // no receiver flush: the root needs none
	insts := f.rec.Instances()
	require.Len(t, insts, 1)
	require.NotNil(t, insts[0].TraceParent)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", hex.EncodeToString(insts[0].TraceParent.TraceID[:]))
	assert.Equal(t, "b7ad6b7169203331", hex.EncodeToString(insts[0].TraceParent.SpanID[:]))
	require.Len(t, f.rec.Spans(), 1)
}

// TestBridgeExporterSpans: spans that agenttrace's own OTel exporter
// emitted in another process are recorded, not skipped.
func TestBridgeExporterSpans(t *testing.T) {
	f := newFixture(t)
	tp := f.provider(t)
	src, err := agenttrace.New(agenttrace.WithAgent("support-bot", "1.0.0"),
		agenttrace.WithExporter(otelbridge.NewExporter(tp)))
	require.NoError(t, err)
	ctx, inst := src.StartInstance(context.Background())
	_, s := src.Start(ctx, agenttrace.TypeLLM, agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o"})
	s.SetResult(agenttrace.LLMResponse{Text: "hi", Usage: &agenttrace.Usage{PromptTokens: 7, CompletionTokens: 3}})
	s.End()
	inst.End()
	ctx2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, src.Shutdown(ctx2))
	require.NoError(t, tp.Shutdown(ctx2))
	f.flush(t)
	llm := f.rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llm, 1)
	require.NotNil(t, llm[0].Usage)
	assert.Equal(t, int64(7), llm[0].Usage.PromptTokens)
	agents := f.rec.SpansOfType(agenttrace.TypeAgent)
	require.Len(t, agents, 1, "the exporter's instance span")
	assert.Equal(t, agents[0].ID, llm[0].ParentID)
}

// jsonRun is an export request in OTLP's JSON mapping, as a JavaScript or
// Python SDK sends it: hex IDs, lowerCamelCase, numeric enums, 64-bit
// integers as strings, a structured (kvlist) gen_ai.input.messages, and an
// unknown field that must be ignored.
const jsonRun = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ts-agent"}}]},
"scopeSpans":[{"scope":{"name":"@example/genai","version":"1.0.0"},"spans":[
 {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"invoke_agent helper","kind":1,
  "startTimeUnixNano":"1772600767000000000","endTimeUnixNano":"1772600767100000000",
  "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"invoke_agent"}},
   {"key":"gen_ai.agent.name","value":{"stringValue":"helper"}},
   {"key":"user.id","value":{"stringValue":"u-7"}}],"status":{}},
 {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B173","parentSpanId":"EEE19B7EC3C1B174",
  "name":"chat claude","kind":3,"startTimeUnixNano":"1772600767010000000","endTimeUnixNano":1772600767090000000,
  "futureField":{"x":1},
  "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
   {"key":"gen_ai.provider.name","value":{"stringValue":"anthropic"}},
   {"key":"gen_ai.request.model","value":{"stringValue":"claude-sonnet-4"}},
   {"key":"gen_ai.usage.input_tokens","value":{"intValue":"812"}},
   {"key":"gen_ai.usage.output_tokens","value":{"intValue":64}},
   {"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"end_turn"}]}}},
   {"key":"gen_ai.input.messages","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[
     {"key":"role","value":{"stringValue":"user"}},
     {"key":"parts","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[
       {"key":"type","value":{"stringValue":"text"}},{"key":"content","value":{"stringValue":"hello <there>"}}]}}]}}}]}}]}}}],
  "status":{"code":"STATUS_CODE_ERROR","message":"overloaded"}}]}]}]}`

func TestJSONBody(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			f := newFixture(t)
			body, enc := []byte(jsonRun), ""
			if gz {
				body, enc = gzipped(t, body), "gzip"
			}
			resp := f.post(t, "application/json; charset=utf-8", enc, body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var answer collectortrace.ExportTraceServiceResponse
			require.NoError(t, protojson.Unmarshal(readAll(t, resp), &answer))
			assert.Nil(t, answer.GetPartialSuccess(), "a full success has no partial_success")
			f.flush(t)

			insts := f.rec.Instances()
			require.Len(t, insts, 1)
			assert.Equal(t, "u-7", insts[0].UserID)
			assert.Equal(t, "5b8efff798038103d269b633813fc60c", insts[0].Metadata["otel.trace_id"], "hex IDs are read as hex")
			assert.Equal(t, time.Unix(0, 1772600767000000000).UTC(), insts[0].StartedAt.UTC())
			by := spansByName(t, f.rec)
			require.Len(t, by, 2)
			chat := by["chat claude"]
			assert.Equal(t, by["invoke_agent helper"].ID, chat.ParentID)
			require.NotNil(t, chat.Usage)
			assert.Equal(t, int64(812), chat.Usage.PromptTokens)
			assert.Equal(t, int64(64), chat.Usage.CompletionTokens)
			assert.Equal(t, agenttrace.StatusFailed, chat.Status)
			assert.Equal(t, "overloaded", chat.Error.Message)
			assert.Equal(t, time.Unix(0, 1772600767090000000).UTC(), chat.EndedAt.UTC())
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(chat.Payload, &req))
			assert.Equal(t, "anthropic", req.Provider)
			require.Len(t, req.Messages, 1, "structured messages become the JSON the mapping reads")
			assert.Equal(t, "user", req.Messages[0].Role)
			assert.Equal(t, "hello <there>", req.Messages[0].Content)
		})
	}
}

// TestPartialSuccess: spans that cannot be taken are counted in the
// answer's partial_success; the others of the request are recorded.
func TestPartialSuccess(t *testing.T) {
	f := newFixture(t)
	msg := &collectortrace.ExportTraceServiceRequest{}
	require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(jsonRun), msg))
	// protojson read the hex IDs as base64: re-encode the request as
	// protobuf with proper IDs, then break some.
	spans := msg.ResourceSpans[0].ScopeSpans[0].Spans
	tid := []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	for i, s := range spans {
		s.TraceId = tid
		s.SpanId = []byte{1, 2, 3, 4, 5, 6, 7, byte(10 + i)}
		s.ParentSpanId = nil
	}
	badTrace := proto.CloneOf(spans[1])
	badTrace.TraceId = []byte{1, 2, 3}
	zeroSpan := proto.CloneOf(spans[1])
	zeroSpan.SpanId = make([]byte, 8)
	noEnd := proto.CloneOf(spans[1])
	noEnd.SpanId = []byte{9, 9, 9, 9, 9, 9, 9, 9}
	noEnd.EndTimeUnixNano = 0
	msg.ResourceSpans[0].ScopeSpans[0].Spans = append(spans[:1], badTrace, zeroSpan, noEnd)
	body, err := proto.Marshal(msg)
	require.NoError(t, err)

	resp := f.post(t, "application/x-protobuf", "", body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var answer collectortrace.ExportTraceServiceResponse
	require.NoError(t, proto.Unmarshal(readAll(t, resp), &answer))
	require.NotNil(t, answer.GetPartialSuccess())
	assert.Equal(t, int64(3), answer.GetPartialSuccess().GetRejectedSpans())
	msgText := answer.GetPartialSuccess().GetErrorMessage()
	assert.Contains(t, msgText, "trace_id")
	assert.Contains(t, msgText, "span_id")
	assert.Contains(t, msgText, "end_time_unix_nano")
	f.flush(t)
	require.Len(t, f.rec.Spans(), 1)
	assert.Equal(t, "invoke_agent helper", f.rec.Spans()[0].Name)
	st := f.rcv.Stats()
	assert.Equal(t, uint64(3), st.Rejected)
	assert.Equal(t, uint64(1), st.Spans)
}

func TestBadRequests(t *testing.T) {
	small := []byte(jsonRun)
	big := bytes.Repeat([]byte(" "), 2048)
	cases := []struct {
		name, method, contentType, encoding string
		body                                []byte
		code                                int
	}{
		{"garbage protobuf", http.MethodPost, "application/x-protobuf", "", []byte{0xff, 0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"malformed JSON", http.MethodPost, "application/json", "", []byte(`{"resourceSpans":[`), http.StatusBadRequest},
		{"JSON of the wrong shape", http.MethodPost, "application/json", "", []byte(`{"resourceSpans":{"a":1}}`), http.StatusBadRequest},
		{"not gzip", http.MethodPost, "application/json", "gzip", small, http.StatusBadRequest},
		{"truncated gzip", http.MethodPost, "application/json", "gzip", gzipped(t, small)[:40], http.StatusBadRequest},
		{"too large", http.MethodPost, "application/json", "", append(append([]byte{}, small...), big...), http.StatusRequestEntityTooLarge},
		{"too large decompressed", http.MethodPost, "application/json", "gzip", gzipped(t, append(append([]byte{}, small...), bytes.Repeat([]byte(" "), 1<<20)...)), http.StatusRequestEntityTooLarge},
		{"unknown content type", http.MethodPost, "text/plain", "", small, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", "", small, http.StatusUnsupportedMediaType},
		{"unknown encoding", http.MethodPost, "application/json", "br", small, http.StatusUnsupportedMediaType},
		{"GET", http.MethodGet, "application/json", "", nil, http.StatusMethodNotAllowed},
	}
	f := newFixture(t, otlpreceiver.WithMaxBodyBytes(int64(len(small)+1024)))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, f.srv.URL+"/v1/traces", bytes.NewReader(c.body))
			require.NoError(t, err)
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			resp, err := f.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, c.code, resp.StatusCode)
			// The answer is a google.rpc.Status in the request's encoding
			// (protobuf when the request's cannot be known).
			var st status.Status
			b := readAll(t, resp)
			if resp.Header.Get("Content-Type") == "application/json" {
				require.NoError(t, protojson.Unmarshal(b, &st))
			} else {
				assert.Equal(t, "application/x-protobuf", resp.Header.Get("Content-Type"))
				require.NoError(t, proto.Unmarshal(b, &st))
			}
			assert.NotEmpty(t, st.GetMessage())
			assert.NotZero(t, st.GetCode())
		})
	}
	// The receiver still serves, and nothing of the refused requests was
	// recorded.
	resp := f.post(t, "application/json", "", small)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	f.flush(t)
	assert.Len(t, f.rec.Spans(), 2, "only the good request's spans")
	assert.Equal(t, uint64(len(cases)), f.rcv.Stats().Refused)
}

func TestShutdownRefuses(t *testing.T) {
	f := newFixture(t)
	// A child without its root waits in the buffer; Shutdown records it.
	msg := strings.Replace(jsonRun, `"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174"`,
		`"traceId":"5B8EFFF798038103D269B633813FC60D","spanId":"EEE19B7EC3C1B174"`, 1)
	resp := f.post(t, "application/json", "", []byte(msg))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.tr.Flush(ctx))
	assert.Len(t, f.rec.Spans(), 1, "only the root's trace is complete")
	require.NoError(t, f.rcv.Shutdown(ctx))
	assert.Len(t, f.rec.Spans(), 2, "Shutdown records the waiting span")
	resp = f.post(t, "application/json", "", []byte(jsonRun))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.NoError(t, f.tr.Flush(ctx))
	assert.Len(t, f.rec.Spans(), 2)
	require.NoError(t, f.rcv.Shutdown(ctx), "a second Shutdown does nothing")
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// WithBridgeOptions reaches the span processor: with content capture off,
// the same run lands without its messages.
func TestBridgeOptions(t *testing.T) {
	for name, tc := range map[string]struct {
		opts     []otlpreceiver.Option
		messages int
	}{
		"default":    {messages: 1},
		"no content": {opts: []otlpreceiver.Option{otlpreceiver.WithBridgeOptions(otelbridge.WithContentCapture(false))}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			resp := f.post(t, "application/json", "", []byte(jsonRun))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			f.flush(t)
			chat := spansByName(t, f.rec)["chat claude"]
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(chat.Payload, &req))
			assert.Equal(t, "claude-sonnet-4", req.Model, "the rest of the mapping is the same")
			assert.Len(t, req.Messages, tc.messages)
		})
	}
}
