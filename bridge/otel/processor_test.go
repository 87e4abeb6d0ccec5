package otelbridge_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	inMsgs   = `[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},{"role":"user","parts":[{"type":"text","content":"where is my order?"}]},{"role":"tool","parts":[{"type":"tool_call_response","id":"call_0","response":"none"}]}]`
	outMsgs  = `[{"role":"assistant","parts":[{"type":"text","content":"Let me look."},{"type":"tool_call","id":"call_1","name":"lookup_order","arguments":{"id":"A1"}}],"finish_reason":"tool_call"}]`
	toolArgs = `{"id":"A1"}`
	toolRes  = `{"status":"shipped"}`
)

// otelAgent records, with plain OTel instrumentation, an agent run in the
// GenAI conventions: invoke_agent > chat, execute_tool (> an HTTP call),
// and a failing chat. Children end before their parents, as in real code.
func otelAgent(ctx context.Context, tr trace.Tracer, t0 time.Time) {
	at := func(d time.Duration) trace.SpanEventOption { return trace.WithTimestamp(t0.Add(d)) }
	ctx, agent := tr.Start(ctx, "invoke_agent planner", at(0), trace.WithAttributes(
		otelbridge.KeyOperationName.String("invoke_agent"), otelbridge.KeyAgentName.String("planner"),
		otelbridge.KeyConversationID.String("conv-1"), otelbridge.KeyUserID.String("u-1")))
	_, chat := tr.Start(ctx, "chat gpt-4o", at(time.Millisecond), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyProviderName.String("openai"),
		otelbridge.KeyRequestModel.String("gpt-4o"), otelbridge.KeyRequestTemperature.Float64(0.2),
		otelbridge.KeyRequestMaxTokens.Int64(256), otelbridge.KeyRequestStream.Bool(true)))
	chat.SetAttributes(
		otelbridge.KeyInputMessages.String(inMsgs), otelbridge.KeyOutputMessages.String(outMsgs),
		otelbridge.KeySystemInstructions.String(`[{"type":"text","content":"You are a support agent."}]`),
		otelbridge.KeyResponseModel.String("gpt-4o-2024-08-06"), otelbridge.KeyResponseID.String("chatcmpl-1"),
		otelbridge.KeyResponseFinishReasons.StringSlice([]string{"tool_calls"}),
		otelbridge.KeyUsageInputTokens.Int64(120), otelbridge.KeyUsageOutputTokens.Int64(30),
		otelbridge.KeyUsageCacheReadInputTokens.Int64(100),
		otelbridge.KeyUsageCacheCreationInputTokens.Int64(15),
		attribute.Int64(otelbridge.PrefixUsageDetails+agenttrace.UsageCacheWrite1h, 15),
		otelbridge.KeyResponseTimeToFirstChunk.Float64(0.02))
	chat.End(at(50 * time.Millisecond))
	tctx, tool := tr.Start(ctx, "execute_tool lookup_order", at(60*time.Millisecond), trace.WithAttributes(
		otelbridge.KeyOperationName.String("execute_tool"), otelbridge.KeyToolName.String("lookup_order"),
		otelbridge.KeyToolCallID.String("call_1"), otelbridge.KeyToolCallArguments.String(toolArgs)))
	_, http := tr.Start(tctx, "GET /orders/A1", at(61*time.Millisecond), trace.WithAttributes(attribute.Int("http.status", 200)))
	http.End(at(70 * time.Millisecond))
	tool.SetAttributes(otelbridge.KeyToolCallResult.String(toolRes))
	tool.End(at(80 * time.Millisecond))
	_, bad := tr.Start(ctx, "chat gpt-4o-mini", at(90*time.Millisecond), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeySystem.String("openai"),
		otelbridge.KeyRequestModel.String("gpt-4o-mini"), otelbridge.KeyUsagePromptTokens.Int64(5)))
	bad.SetStatus(codes.Error, "rate limited")
	bad.SetAttributes(otelbridge.KeyErrorType.String("429"))
	bad.End(at(95 * time.Millisecond))
	agent.End(at(100 * time.Millisecond))
}

func newProcessorFixture(t *testing.T, opts ...otelbridge.Option) (*sdktrace.TracerProvider, *agenttrace.Tracer, *agenttracetest.Recorder, *otelbridge.SpanProcessor) {
	t.Helper()
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	p := otelbridge.NewSpanProcessor(tr, opts...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	return tp, tr, rec, p
}

func TestProcessorMapsGenAISpans(t *testing.T) {
	for _, content := range []bool{false, true} {
		t.Run(map[bool]string{false: "without content", true: "with content"}[content], func(t *testing.T) {
			tp, tr, rec, _ := newProcessorFixture(t, otelbridge.WithContentCapture(content))
			t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			otelAgent(context.Background(), tp.Tracer("app"), t0)
			require.NoError(t, tr.Flush(context.Background()))

			insts := rec.Instances()
			require.Len(t, insts, 1)
			inst := insts[0]
			assert.Equal(t, t0, inst.StartedAt)
			assert.Equal(t, "conv-1", inst.SessionID)
			assert.Equal(t, "u-1", inst.UserID)
			assert.Len(t, inst.Metadata["otel.trace_id"], 32)
			assert.Equal(t, agenttrace.StatusComplete, inst.Status)

			spans := rec.Spans()
			require.Len(t, spans, 4, "the HTTP span is skipped")
			by := map[string]agenttrace.SpanData{}
			for _, s := range spans {
				by[s.Name] = s
			}
			agent, chat, tool, bad := by["invoke_agent planner"], by["chat gpt-4o"], by["execute_tool lookup_order"], by["chat gpt-4o-mini"]
			assert.Equal(t, "agent", agent.Type)
			assert.True(t, agent.ParentID.IsZero())
			for _, s := range []agenttrace.SpanData{chat, tool, bad} {
				assert.Equal(t, agent.ID, s.ParentID, s.Name)
			}
			assert.Equal(t, t0, agent.StartedAt)
			assert.Equal(t, t0.Add(60*time.Millisecond), tool.StartedAt)
			// Original end times, time to first token and error types survive.
			assert.Equal(t, t0.Add(100*time.Millisecond), agent.EndedAt)
			assert.Equal(t, t0.Add(50*time.Millisecond), chat.EndedAt)
			assert.Equal(t, t0.Add(80*time.Millisecond), tool.EndedAt)
			assert.Equal(t, 20*time.Millisecond, chat.TimeToFirstToken())
			assert.Equal(t, t0.Add(100*time.Millisecond), inst.EndedAt)
			assert.Equal(t, "429", bad.Error.Type)

			var ain agenttrace.AgentInput
			require.NoError(t, json.Unmarshal(agent.Payload, &ain))
			assert.Equal(t, agenttrace.AgentInput{Name: "planner", SessionID: "conv-1"}, ain)

			assert.Equal(t, "llm", chat.Type)
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(chat.Payload, &req))
			assert.Equal(t, "chat", req.Operation)
			assert.Equal(t, "openai", req.Provider)
			assert.Equal(t, "gpt-4o", req.Model)
			assert.True(t, req.Stream)
			require.NotNil(t, req.Settings)
			assert.Equal(t, 0.2, *req.Settings.Temperature)
			assert.Equal(t, int64(256), *req.Settings.MaxTokens)
			var resp agenttrace.LLMResponse
			require.NoError(t, json.Unmarshal(chat.Result, &resp))
			assert.Equal(t, "gpt-4o-2024-08-06", resp.Model)
			assert.Equal(t, "chatcmpl-1", resp.ID)
			assert.Equal(t, "tool_calls", resp.FinishReason)
			require.NotNil(t, chat.Usage)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 120, CompletionTokens: 30, TotalTokens: 150, Details: map[string]int64{
				agenttrace.UsageCacheRead: 100, agenttrace.UsageCacheWrite: 15, agenttrace.UsageCacheWrite1h: 15}}, *chat.Usage)

			assert.Equal(t, "tool", tool.Type)
			var tin agenttrace.ToolInput
			require.NoError(t, json.Unmarshal(tool.Payload, &tin))
			assert.Equal(t, "lookup_order", tin.Name)
			assert.Equal(t, "call_1", tin.CallID)

			assert.Equal(t, agenttrace.StatusFailed, bad.Status)
			assert.Equal(t, "rate limited", bad.Error.Message)
			assert.Equal(t, int64(5), bad.Usage.PromptTokens, "deprecated keys are read")
			var breq agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(bad.Payload, &breq))
			assert.Equal(t, "openai", breq.Provider, "from gen_ai.system")

			if !content {
				assert.Empty(t, req.Messages)
				assert.Empty(t, req.System)
				assert.Empty(t, resp.Text)
				assert.Nil(t, tin.Arguments)
				assert.NotContains(t, string(tool.Result), "shipped")
				return
			}
			assert.Equal(t, "You are a support agent.", req.System)
			assert.Equal(t, []agenttrace.Message{
				{Role: "system", Content: "Be brief."},
				{Role: "user", Content: "where is my order?"},
				{Role: "tool", Content: "none", ToolCallID: "call_0"},
			}, req.Messages)
			assert.Equal(t, "Let me look.", resp.Text)
			require.Len(t, resp.ToolCalls, 1)
			assert.Equal(t, "lookup_order", resp.ToolCalls[0].Name)
			assert.JSONEq(t, toolArgs, string(resp.ToolCalls[0].Arguments))
			assert.JSONEq(t, toolArgs, string(mustJSON(t, tin.Arguments)))
			assert.JSONEq(t, `{"output":`+toolRes+`}`, string(tool.Result))
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// OTel GenAI spans -> agenttrace -> OTel again: the GenAI fields survive.
func TestProcessorRoundTrip(t *testing.T) {
	out := tracetest.NewSpanRecorder()
	outTP := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()), sdktrace.WithSpanProcessor(out))
	defer func() { require.NoError(t, outTP.Shutdown(context.Background())) }()
	tr, err := agenttrace.New(agenttrace.WithAgent("relay", "1"),
		agenttrace.WithExporter(otelbridge.NewExporter(outTP, otelbridge.WithContentCapture(true))))
	require.NoError(t, err)
	in := tracetest.NewSpanRecorder()
	inTP := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(in),
		sdktrace.WithSpanProcessor(otelbridge.NewSpanProcessor(tr, otelbridge.WithContentCapture(true))))
	otelAgent(context.Background(), inTP.Tracer("app"), time.Now().Add(-time.Second))
	require.NoError(t, inTP.Shutdown(context.Background()))
	require.NoError(t, tr.Shutdown(context.Background()))

	got := byName(t, out.Ended())
	require.Len(t, got, 5, "the instance root and the four GenAI spans")
	keys := []attribute.Key{
		otelbridge.KeyOperationName, otelbridge.KeyProviderName, otelbridge.KeyRequestModel,
		otelbridge.KeyRequestTemperature, otelbridge.KeyRequestMaxTokens, otelbridge.KeyRequestStream,
		otelbridge.KeyResponseModel, otelbridge.KeyResponseID, otelbridge.KeyResponseFinishReasons,
		otelbridge.KeyUsageInputTokens, otelbridge.KeyUsageOutputTokens, otelbridge.KeyUsageCacheReadInputTokens,
		otelbridge.KeyUsageCacheCreationInputTokens, otelbridge.PrefixUsageDetails + agenttrace.UsageCacheWrite1h,
		otelbridge.KeyAgentName, otelbridge.KeyConversationID, otelbridge.KeyToolName, otelbridge.KeyToolCallID,
	}
	jsonKeys := []attribute.Key{
		otelbridge.KeyInputMessages, otelbridge.KeyOutputMessages, otelbridge.KeySystemInstructions,
		otelbridge.KeyToolCallArguments, otelbridge.KeyToolCallResult,
	}
	for _, orig := range in.Ended() {
		if orig.Name() == "GET /orders/A1" {
			continue
		}
		back, ok := got[orig.Name()]
		require.True(t, ok, orig.Name())
		oa, ba := attrMap(orig.Attributes()), attrMap(back.Attributes())
		for _, k := range keys {
			if v, ok := oa[k]; ok {
				assert.Equal(t, v, ba[k], "%s %s", orig.Name(), k)
			}
		}
		for _, k := range jsonKeys {
			if v, ok := oa[k]; ok {
				assert.JSONEq(t, v.AsString(), ba[k].AsString(), "%s %s", orig.Name(), k)
			}
		}
		assert.Equal(t, orig.StartTime(), back.StartTime(), orig.Name())
		assert.Equal(t, orig.EndTime(), back.EndTime(), orig.Name())
		assert.Equal(t, orig.Status().Code, back.Status().Code, orig.Name())
		assert.Equal(t, oa[otelbridge.KeyErrorType], ba[otelbridge.KeyErrorType], orig.Name())
		assert.Equal(t, orig.SpanKind(), back.SpanKind(), orig.Name())
	}
	agent := got["invoke_agent planner"]
	assert.Equal(t, got["invoke_agent relay"].SpanContext().SpanID(), agent.Parent().SpanID())
	for _, name := range []string{"chat gpt-4o", "execute_tool lookup_order", "chat gpt-4o-mini"} {
		assert.Equal(t, agent.SpanContext().SpanID(), got[name].Parent().SpanID(), name)
	}
	assert.Equal(t, "rate limited", got["chat gpt-4o-mini"].Status().Description)
}

func TestProcessorTimeoutAndLateSpans(t *testing.T) {
	tp, tr, rec, p := newProcessorFixture(t, otelbridge.WithTraceTimeout(30*time.Millisecond))
	ctx, root := tp.Tracer("app").Start(context.Background(), "invoke_agent slow", trace.WithAttributes(otelbridge.KeyOperationName.String("invoke_agent")))
	_, chat := tp.Tracer("app").Start(ctx, "chat m", trace.WithAttributes(otelbridge.KeyOperationName.String("chat"), otelbridge.KeyRequestModel.String("m")))
	chat.End()
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rec.WaitFor(wctx, func(r *agenttracetest.Recorder) bool { return len(r.SpansOfType("llm")) == 1 }),
		"replayed when the root does not end in time")
	assert.Empty(t, rec.SpansOfType("agent"))
	root.End()
	assert.Equal(t, uint64(1), p.Dropped(), "the root ended after its trace was replayed")
	require.NoError(t, tr.Flush(context.Background()))
	assert.Len(t, rec.Instances(), 1)
}

func TestProcessorLimitsAndGenericSpans(t *testing.T) {
	tp, tr, rec, p := newProcessorFixture(t, otelbridge.WithTraceLimits(1, 2), otelbridge.WithGenericSpans("chain"))
	otr := tp.Tracer("app")
	ctx, a := otr.Start(context.Background(), "handler", trace.WithAttributes(attribute.String("route", "/x")))
	for range 3 {
		_, c := otr.Start(ctx, "step")
		c.End()
	}
	assert.Equal(t, uint64(1), p.Dropped(), "two spans per trace at most")
	// A second trace: the first is replayed to make room.
	_, other := otr.Start(context.Background(), "other", trace.WithAttributes(attribute.String("route", "/y"), attribute.Int("n", 2)))
	other.End()
	a.End()
	require.NoError(t, tp.ForceFlush(context.Background()))
	require.NoError(t, tr.Flush(context.Background()))
	assert.Len(t, rec.Instances(), 2)
	chains := rec.SpansOfType("chain")
	require.Len(t, chains, 3)
	for _, c := range chains {
		assert.Contains(t, []string{"step", "other"}, c.Name, "the first trace was replayed without its root")
		if c.Name == "other" {
			assert.JSONEq(t, `{"route":"/y","n":2}`, string(c.Payload), "attributes as the payload")
		}
	}
}

// A provider carrying both directions into the same tracer does not loop.
func TestProcessorIgnoresBridgeSpans(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	var tp *sdktrace.TracerProvider
	tp = sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(otelbridge.IDGenerator()))
	tr, err := agenttrace.New(agenttrace.WithExporter(otelbridge.NewExporter(tp), rec), agenttrace.WithFlushInterval(5*time.Millisecond))
	require.NoError(t, err)
	tp.RegisterSpanProcessor(otelbridge.NewSpanProcessor(tr))
	ctx, inst := tr.StartInstance(context.Background())
	_, s := tr.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	s.End()
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	require.NoError(t, tp.Shutdown(context.Background()))
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Len(t, rec.Instances(), 1, "nothing replayed")
	assert.Len(t, rec.Spans(), 1)
}

func TestProcessorConcurrentSafe(t *testing.T) {
	tp, tr, rec, _ := newProcessorFixture(t, otelbridge.WithContentCapture(true))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				otelAgent(context.Background(), tp.Tracer("app"), time.Now())
			}
		})
	}
	wg.Wait()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Len(t, rec.Instances(), 160)
	assert.Len(t, rec.Spans(), 160*4)
}

// A trace continued from another process (its local root has a remote
// parent) becomes an instance whose trace parent is that remote span: an
// Exporter puts it back under it.
func TestProcessorRemoteParent(t *testing.T) {
	tp, tr, rec, _ := newProcessorFixture(t)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa, 1}, SpanID: trace.SpanID{0xb, 2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	otelAgent(trace.ContextWithRemoteSpanContext(context.Background(), remote), tp.Tracer("app"), t0)
	require.NoError(t, tr.Flush(context.Background()))

	insts := rec.Instances()
	require.Len(t, insts, 1)
	want := agenttrace.TraceParent{TraceID: remote.TraceID(), SpanID: remote.SpanID(), Flags: byte(remote.TraceFlags())}
	require.NotNil(t, insts[0].TraceParent)
	assert.Equal(t, want, *insts[0].TraceParent)
	assert.NotContains(t, insts[0].Metadata, "traceparent")
	for _, s := range rec.Spans() {
		assert.Nil(t, s.TraceParent, s.Name)
	}
	// A failing OTel span keeps its error.type; without one, "error".
	bad := rec.FindSpans(func(d agenttrace.SpanData) bool { return d.Name == "chat gpt-4o-mini" })
	require.Len(t, bad, 1)
	assert.Equal(t, "429", bad[0].Error.Type)
}

func TestProcessorErrorWithoutType(t *testing.T) {
	tp, tr, rec, _ := newProcessorFixture(t)
	_, s := tp.Tracer("app").Start(context.Background(), "chat m", trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyRequestModel.String("m")))
	s.SetStatus(codes.Error, "boom")
	s.End()
	require.NoError(t, tr.Flush(context.Background()))
	spans := rec.Spans()
	require.Len(t, spans, 1)
	assert.Equal(t, agenttrace.StatusFailed, spans[0].Status)
	assert.Equal(t, "error", spans[0].Error.Type)
	assert.Equal(t, "boom", spans[0].Error.Message)
	insts := rec.Instances()
	require.Len(t, insts, 1)
	assert.Equal(t, agenttrace.StatusFailed, insts[0].Status, "the local root failed")
	assert.Equal(t, "error", insts[0].Error.Type)
}
