package otelbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func ptr[T any](v T) *T { return &v }

// runAgent records one instance with a span of every kind: an agent span
// holding a streamed LLM call, a tool call, a failed tool call, a chain step
// and a pending tool call cancelled before it ran.
func runAgent(ctx context.Context, tr *agenttrace.Tracer) *agenttrace.Instance {
	ctx, inst := tr.StartInstance(ctx,
		agenttrace.WithUserID("u-42"), agenttrace.WithGroupID("g-7"), agenttrace.WithChannel("email"),
		agenttrace.WithSessionID("s-9"), agenttrace.WithMetadata(map[string]string{"tier": "gold"}))
	actx, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "planner", SessionID: "s-9", Model: "claude-sonnet-4", Input: "where is my order?"})

	_, llm := tr.Start(actx, "llm", agenttrace.LLMRequest{
		Provider: "anthropic", Model: "claude-sonnet-4", System: "Be brief.",
		Messages: []agenttrace.Message{{Role: "user", Content: "where is my order?"}},
		Settings: &agenttrace.LLMSettings{Temperature: ptr(0.2), MaxTokens: ptr(int64(512))},
		Stream:   true,
	}, agenttrace.WithName("plan"))
	time.Sleep(2 * time.Millisecond)
	llm.MarkFirstToken()
	llm.SetResult(agenttrace.LLMResponse{
		ID: "msg_1", Model: "claude-sonnet-4-20250514",
		ToolCalls:    []agenttrace.ToolCall{{ID: "toolu_1", Name: "lookup_order", Arguments: json.RawMessage(`{"id":"A1"}`)}},
		FinishReason: "tool_use",
		Usage: &agenttrace.Usage{PromptTokens: 300, CompletionTokens: 12, Details: map[string]int64{
			agenttrace.UsageCacheRead: 100, agenttrace.UsageCacheWrite: 50, agenttrace.UsageCacheWrite5m: 30,
			agenttrace.UsageCacheWrite1h: 20, agenttrace.UsageReasoning: 4}},
		Cost: &agenttrace.Cost{Total: 0.0012},
	})
	llm.End()

	_, tool := tr.Start(actx, "tool", agenttrace.ToolInput{Name: "lookup_order", CallID: "toolu_1", Arguments: map[string]any{"id": "A1"}})
	tool.SetResult(agenttrace.ToolOutput{Output: map[string]any{"status": "shipped"}})
	tool.End()

	_, refund := tr.Start(actx, "tool", agenttrace.ToolInput{Name: "refund", CallID: "toolu_2"})
	refund.Fail(errors.New("refund service down"))

	_, chain := tr.Start(actx, "chain", agenttrace.ChainInput{Name: "format", Inputs: map[string]any{
		"n": 3, "ratio": 0.5, "ok": true, "tags": []string{"a", "b"}, "mixed": []any{1, "x"},
		"deep": map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": 1}}}},
	}})
	chain.SetResult(agenttrace.ChainOutput{Outputs: "ok"})
	chain.End()

	_, pending := tr.StartPending(actx, "tool", agenttrace.ToolInput{Name: "escalate"})
	pending.Cancel("not needed")

	agent.SetResult(agenttrace.AgentOutput{Output: "shipped", StopReason: "end_turn", Turns: 2})
	agent.End()
	inst.End()
	return inst
}

func TestExporterMapsEverySpanType(t *testing.T) {
	for _, tc := range []struct {
		name             string
		content, implied bool
	}{{"without content", false, false}, {"with content", true, false}, {"implied attributes", false, true}} {
		content := tc.content
		t.Run(tc.name, func(t *testing.T) {
			opts := []otelbridge.Option{otelbridge.WithContentCapture(content)}
			if tc.implied {
				opts = append(opts, otelbridge.WithImpliedAttributes())
			}
			f := newFixture(t, opts)
			inst := runAgent(context.Background(), f.tracer)
			f.flush(t)

			spans := byName(t, f.otel.Ended())
			require.Len(t, spans, 7)
			data := map[agenttrace.ID]agenttrace.SpanData{}
			for _, d := range f.rec.Spans() {
				data[d.ID] = d
			}
			idata := f.rec.Instances()[0]
			traceID := otelbridge.TraceID(inst.ID())
			rootSID := otelbridge.SpanID(inst.ID())

			// Every span: deterministic IDs, original times, parent.
			for name, s := range spans {
				a := attrMap(s.Attributes())
				assert.Equal(t, traceID, s.SpanContext().TraceID(), name)
				assert.Equal(t, otelbridge.ScopeName, s.InstrumentationScope().Name, name)
				if name == "invoke_agent support-bot" {
					assert.Equal(t, inst.ID().String(), a[otelbridge.KeyInstanceID].AsString(), name)
					_, ok := otelbridge.IdentityOf(s)
					assert.False(t, ok, "the root has no span identity")
					continue
				}
				id, err := agenttrace.ParseID(a[otelbridge.KeySpanID].AsString())
				require.NoError(t, err, name)
				d := data[id]
				// What the OTel span says is not repeated in attributes,
				// unless asked for; IdentityOf reads it back either way.
				got, ok := otelbridge.IdentityOf(s)
				require.True(t, ok, name)
				assert.Equal(t, otelbridge.Identity{InstanceID: inst.ID(), SpanID: id, Type: d.Type, Status: d.Status}, got, name)
				if tc.implied {
					assert.Equal(t, inst.ID().String(), a[otelbridge.KeyInstanceID].AsString(), name)
					assert.Equal(t, d.Type, a[otelbridge.KeySpanType].AsString(), name)
					assert.Equal(t, d.Status.String(), a[otelbridge.KeySpanStatus].AsString(), name)
				} else {
					assert.NotContains(t, a, otelbridge.KeyInstanceID, name)
					_, typed := a[otelbridge.KeySpanType]
					assert.Equal(t, d.Type == "chain", typed, "%s: only the type no operation names is said", name)
					_, statused := a[otelbridge.KeySpanStatus]
					assert.Equal(t, d.Status == agenttrace.StatusCancelled, statused, "%s: only cancelled is said", name)
				}
				assert.Equal(t, otelbridge.SpanID(id), s.SpanContext().SpanID(), name)
				assert.Equal(t, d.CreatedAt, s.StartTime(), name)
				assert.Equal(t, d.EndedAt, s.EndTime(), name)
				wantParent := rootSID
				if !d.ParentID.IsZero() {
					wantParent = otelbridge.SpanID(d.ParentID)
				}
				assert.Equal(t, wantParent, s.Parent().SpanID(), name)
				assert.Equal(t, traceID, s.Parent().TraceID(), name)
			}

			root := spans["invoke_agent support-bot"]
			ra := attrMap(root.Attributes())
			assert.Equal(t, trace.SpanKindInternal, root.SpanKind())
			assert.False(t, root.Parent().IsValid())
			assert.Equal(t, rootSID, root.SpanContext().SpanID())
			assert.Equal(t, idata.StartedAt, root.StartTime())
			assert.Equal(t, "invoke_agent", ra[otelbridge.KeyOperationName].AsString())
			assert.Equal(t, "support-bot", ra[otelbridge.KeyAgentName].AsString())
			assert.Equal(t, "1.4.0", ra[otelbridge.KeyAgentVersion].AsString())
			assert.Equal(t, "u-42", ra[otelbridge.KeyUserID].AsString())
			assert.Equal(t, "g-7", ra[otelbridge.KeyGroupID].AsString())
			assert.Equal(t, "email", ra[otelbridge.KeyChannel].AsString())
			assert.Equal(t, "s-9", ra[otelbridge.KeyConversationID].AsString())
			assert.Equal(t, "gold", ra[otelbridge.PrefixMetadata+"tier"].AsString())
			assert.Equal(t, "complete", ra[otelbridge.KeyInstanceStatus].AsString())
			assert.Equal(t, int64(300), ra[otelbridge.KeyUsageInputTokens].AsInt64())
			assert.Equal(t, int64(12), ra[otelbridge.KeyUsageOutputTokens].AsInt64())
			if tc.implied {
				assert.Equal(t, int64(312), ra[otelbridge.KeyTotalTokens].AsInt64())
			} else {
				assert.NotContains(t, ra, otelbridge.KeyTotalTokens, "the total is the sum")
			}
			assert.InDelta(t, 0.0012, ra[otelbridge.KeyCostTotal].AsFloat64(), 1e-12)
			assert.Equal(t, "USD", ra[otelbridge.KeyCostCurrency].AsString())
			assert.Equal(t, int64(6), ra[otelbridge.PrefixSpanCounts+"total"].AsInt64())
			assert.Equal(t, int64(4), ra[otelbridge.PrefixSpanCounts+"complete"].AsInt64())
			assert.Equal(t, int64(1), ra[otelbridge.PrefixSpanCounts+"failed"].AsInt64())
			assert.Equal(t, int64(1), ra[otelbridge.PrefixSpanCounts+"cancelled"].AsInt64())
			assert.Equal(t, int64(1), ra[otelbridge.KeyLLMCalls].AsInt64())
			assert.Greater(t, ra[otelbridge.KeyTimeToFirstToken].AsFloat64(), 0.0)
			assert.Equal(t, codes.Unset, root.Status().Code)

			agent := spans["invoke_agent planner"]
			aa := attrMap(agent.Attributes())
			assert.Equal(t, trace.SpanKindInternal, agent.SpanKind())
			assert.Equal(t, "planner", aa[otelbridge.KeyAgentName].AsString())
			assert.Equal(t, "s-9", aa[otelbridge.KeyConversationID].AsString())
			assert.Equal(t, "end_turn", aa[otelbridge.PrefixResult+"stop_reason"].AsString())
			assert.Equal(t, int64(2), aa[otelbridge.PrefixResult+"turns"].AsInt64())

			llm := spans["chat claude-sonnet-4"]
			la := attrMap(llm.Attributes())
			assert.Equal(t, trace.SpanKindClient, llm.SpanKind())
			assert.Equal(t, "chat", la[otelbridge.KeyOperationName].AsString())
			assert.Equal(t, "anthropic", la[otelbridge.KeyProviderName].AsString())
			assert.Equal(t, "claude-sonnet-4", la[otelbridge.KeyRequestModel].AsString())
			assert.Equal(t, "claude-sonnet-4-20250514", la[otelbridge.KeyResponseModel].AsString())
			assert.Equal(t, "msg_1", la[otelbridge.KeyResponseID].AsString())
			assert.Equal(t, "plan", la[otelbridge.KeySpanName].AsString())
			assert.Equal(t, []string{"tool_use"}, la[otelbridge.KeyResponseFinishReasons].AsStringSlice())
			assert.Equal(t, int64(300), la[otelbridge.KeyUsageInputTokens].AsInt64())
			assert.Equal(t, int64(12), la[otelbridge.KeyUsageOutputTokens].AsInt64())
			assert.Equal(t, int64(100), la[otelbridge.KeyUsageCacheReadInputTokens].AsInt64())
			assert.Equal(t, int64(50), la[otelbridge.KeyUsageCacheCreationInputTokens].AsInt64())
			assert.Equal(t, int64(30), la[otelbridge.PrefixUsageDetails+agenttrace.UsageCacheWrite5m].AsInt64())
			assert.Equal(t, int64(20), la[otelbridge.PrefixUsageDetails+agenttrace.UsageCacheWrite1h].AsInt64())
			assert.Equal(t, int64(4), la[otelbridge.KeyUsageReasoningOutputTokens].AsInt64())
			assert.InDelta(t, 0.2, la[otelbridge.KeyRequestTemperature].AsFloat64(), 1e-12)
			assert.Equal(t, int64(512), la[otelbridge.KeyRequestMaxTokens].AsInt64())
			assert.True(t, la[otelbridge.KeyRequestStream].AsBool())
			ttft := la[otelbridge.KeyResponseTimeToFirstChunk].AsFloat64()
			ld := data[idOf(t, la)]
			assert.InDelta(t, ld.TimeToFirstToken().Seconds(), ttft, 1e-9)
			assert.Greater(t, ttft, 0.0)

			tool := spans["execute_tool lookup_order"]
			ta := attrMap(tool.Attributes())
			assert.Equal(t, trace.SpanKindInternal, tool.SpanKind())
			assert.Equal(t, "execute_tool", ta[otelbridge.KeyOperationName].AsString())
			assert.Equal(t, "lookup_order", ta[otelbridge.KeyToolName].AsString())
			assert.Equal(t, "toolu_1", ta[otelbridge.KeyToolCallID].AsString())
			assert.Equal(t, codes.Unset, tool.Status().Code)

			refund := spans["execute_tool refund"]
			fa := attrMap(refund.Attributes())
			assert.Equal(t, codes.Error, refund.Status().Code)
			assert.Equal(t, "refund service down", refund.Status().Description)
			assert.Equal(t, "error", fa[otelbridge.KeyErrorType].AsString())
			if tc.implied {
				assert.Equal(t, "failed", fa[otelbridge.KeySpanStatus].AsString())
			}

			cancelled := spans["execute_tool escalate"]
			ca := attrMap(cancelled.Attributes())
			assert.Equal(t, codes.Unset, cancelled.Status().Code)
			assert.Equal(t, "cancelled", ca[otelbridge.KeySpanStatus].AsString())
			assert.Equal(t, "not needed", ca[otelbridge.KeyCancelReason].AsString())

			chain := spans["chain"]
			cha := attrMap(chain.Attributes())
			assert.Equal(t, "format", cha[otelbridge.PrefixPayload+"name"].AsString())
			assert.Equal(t, int64(3), cha[otelbridge.PrefixPayload+"inputs.n"].AsInt64())
			assert.InDelta(t, 0.5, cha[otelbridge.PrefixPayload+"inputs.ratio"].AsFloat64(), 1e-12)
			assert.True(t, cha[otelbridge.PrefixPayload+"inputs.ok"].AsBool())
			assert.Equal(t, []string{"a", "b"}, cha[otelbridge.PrefixPayload+"inputs.tags"].AsStringSlice())
			assert.Equal(t, `[1,"x"]`, cha[otelbridge.PrefixPayload+"inputs.mixed"].AsString())
			assert.JSONEq(t, `{"c":{"d":1}}`, cha[otelbridge.PrefixPayload+"inputs.deep.a.b"].AsString(), "four levels, then JSON")
			assert.Equal(t, "ok", cha[otelbridge.PrefixResult+"outputs"].AsString())

			contentKeys := []attribute.Key{otelbridge.KeyInputMessages, otelbridge.KeyOutputMessages, otelbridge.KeySystemInstructions}
			if !content {
				for _, k := range contentKeys {
					assert.NotContains(t, la, k)
				}
				assert.NotContains(t, ta, otelbridge.KeyToolCallArguments)
				assert.NotContains(t, ta, otelbridge.KeyToolCallResult)
				assert.NotContains(t, aa, attribute.Key(otelbridge.PrefixPayload+"input"))
				return
			}
			assert.JSONEq(t, `[{"role":"user","parts":[{"type":"text","content":"where is my order?"}]}]`, la[otelbridge.KeyInputMessages].AsString())
			assert.JSONEq(t, `[{"type":"text","content":"Be brief."}]`, la[otelbridge.KeySystemInstructions].AsString())
			assert.JSONEq(t, `[{"role":"assistant","finish_reason":"tool_call","parts":[{"type":"tool_call","id":"toolu_1","name":"lookup_order","arguments":{"id":"A1"}}]}]`,
				la[otelbridge.KeyOutputMessages].AsString())
			assert.JSONEq(t, `{"id":"A1"}`, ta[otelbridge.KeyToolCallArguments].AsString())
			assert.JSONEq(t, `{"status":"shipped"}`, ta[otelbridge.KeyToolCallResult].AsString())
			assert.Equal(t, `"where is my order?"`, aa[otelbridge.PrefixPayload+"input"].AsString())
			assert.Equal(t, `"shipped"`, aa[otelbridge.PrefixResult+"output"].AsString())
		})
	}
}

func idOf(t *testing.T, a map[attribute.Key]attribute.Value) agenttrace.ID {
	t.Helper()
	id, err := agenttrace.ParseID(a[otelbridge.KeySpanID].AsString())
	require.NoError(t, err)
	return id
}

// rec builds a span record by hand, for the cases the pipeline produces
// only with precise timing.
func spanRecord(kind agenttrace.RecordKind, d agenttrace.SpanData) agenttrace.Record {
	return agenttrace.Record{Kind: kind, Span: d}
}

func TestExporterOpenSpans(t *testing.T) {
	sr, tp := newRecordingProvider(t, sdktrace.WithIDGenerator(otelbridge.IDGenerator()))
	exp := otelbridge.NewExporter(tp)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	inst, parent, child, lost := newID(t0, 1), newID(t0, 2), newID(t0, 3), newID(t0, 4)
	idata := &agenttrace.InstanceData{ID: inst, Agent: agenttrace.Agent{Name: "bot"}, Status: agenttrace.StatusActive, StartedAt: t0}
	pd := agenttrace.SpanData{ID: parent, InstanceID: inst, Type: "chain", Status: agenttrace.StatusActive, CreatedAt: t0.Add(time.Second), StartedAt: t0.Add(time.Second)}
	cd := agenttrace.SpanData{ID: child, ParentID: parent, InstanceID: inst, Type: "llm", Status: agenttrace.StatusPending, CreatedAt: t0.Add(2 * time.Second),
		Payload: []byte(`{"model":"m","provider":"p"}`)}
	ld := agenttrace.SpanData{ID: lost, ParentID: parent, InstanceID: inst, Type: "tool", Status: agenttrace.StatusActive, CreatedAt: t0.Add(3 * time.Second), StartedAt: t0.Add(3 * time.Second)}

	require.NoError(t, exp.Export(ctx, []agenttrace.Record{
		{Kind: agenttrace.InstanceStarted, Instance: idata},
		spanRecord(agenttrace.SpanStarted, pd),
		spanRecord(agenttrace.SpanStarted, cd),
		spanRecord(agenttrace.SpanStarted, ld),
	}))
	assert.Empty(t, sr.Ended(), "nothing ends before its end record")
	require.Len(t, sr.Started(), 4)

	// The instance ends while its spans are still open: its root ends, the
	// spans carry on.
	cd.Status, cd.StartedAt = agenttrace.StatusActive, t0.Add(2500*time.Millisecond)
	ended := *idata
	ended.Status, ended.EndedAt = agenttrace.StatusComplete, t0.Add(4*time.Second)
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{
		spanRecord(agenttrace.SpanActivated, cd),
		{Kind: agenttrace.InstanceEnded, Instance: &ended},
	}))
	require.Len(t, sr.Ended(), 1)
	assert.Equal(t, "invoke_agent bot", sr.Ended()[0].Name())
	assert.Equal(t, t0.Add(4*time.Second), sr.Ended()[0].EndTime())

	pd.Status, pd.EndedAt = agenttrace.StatusComplete, t0.Add(5*time.Second)
	cd.Status, cd.EndedAt = agenttrace.StatusComplete, t0.Add(6*time.Second)
	cd.Result = []byte(`{"model":"m-2","finish_reason":"stop"}`)
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{
		spanRecord(agenttrace.SpanEnded, cd),
		spanRecord(agenttrace.SpanEnded, pd),
	}))
	require.NoError(t, exp.Shutdown(ctx))
	require.NoError(t, exp.Shutdown(ctx), "Shutdown is idempotent")
	assert.ErrorIs(t, exp.Export(ctx, nil), otelbridge.ErrShutdown)

	spans := byName(t, sr.Ended())
	require.Len(t, spans, 4)
	c := spans["chat m"]
	assert.Equal(t, t0.Add(2*time.Second), c.StartTime(), "a pending span starts when it was created")
	assert.Equal(t, t0.Add(6*time.Second), c.EndTime())
	ca := attrMap(c.Attributes())
	assert.Equal(t, "m-2", ca[otelbridge.KeyResponseModel].AsString())
	assert.Equal(t, t0.Add(2500*time.Millisecond).Format(time.RFC3339Nano), ca[otelbridge.KeyActivatedAt].AsString())
	assert.Equal(t, otelbridge.SpanID(parent), c.Parent().SpanID())
	assert.Equal(t, t0.Add(5*time.Second), spans["chain"].EndTime())

	unfinished := spans["execute_tool"]
	assert.True(t, attrMap(unfinished.Attributes())[otelbridge.KeyUnfinished].AsBool())
	assert.NotContains(t, attrMap(spans["chain"].Attributes()), otelbridge.KeyUnfinished)
}

func TestExporterMaxOpenSpans(t *testing.T) {
	sr, tp := newRecordingProvider(t, sdktrace.WithIDGenerator(otelbridge.IDGenerator()))
	exp := otelbridge.NewExporter(tp, otelbridge.WithMaxOpenSpans(1))
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0)
	inst := newID(t0, 1)
	a := agenttrace.SpanData{ID: newID(t0, 2), InstanceID: inst, Type: "a", Status: agenttrace.StatusActive, CreatedAt: t0}
	b := agenttrace.SpanData{ID: newID(t0, 3), InstanceID: inst, Type: "b", Status: agenttrace.StatusActive, CreatedAt: t0}
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{spanRecord(agenttrace.SpanStarted, a), spanRecord(agenttrace.SpanStarted, b)}))
	require.Len(t, sr.Ended(), 1)
	assert.Equal(t, "b", sr.Ended()[0].Name())
	assert.True(t, attrMap(sr.Ended()[0].Attributes())[otelbridge.KeyUnfinished].AsBool())
	if id, ok := otelbridge.IdentityOf(sr.Ended()[0]); assert.True(t, ok) {
		assert.Equal(t, otelbridge.Identity{InstanceID: inst, SpanID: b.ID, Type: "b"}, id, "no status: its end was not seen")
	}
	b.Status, b.EndedAt = agenttrace.StatusComplete, t0.Add(time.Second)
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{spanRecord(agenttrace.SpanEnded, b)}))
	assert.Len(t, sr.Ended(), 1, "the end of a span ended early is ignored")
	require.NoError(t, exp.Shutdown(ctx))
	assert.Len(t, sr.Ended(), 2)
}

func TestExporterWithoutIDGenerator(t *testing.T) {
	f := newFixture(t, nil, sdktrace.WithSampler(sdktrace.AlwaysSample()))
	inst := runAgent(context.Background(), f.tracer)
	f.flush(t)
	spans := byName(t, f.otel.Ended())
	require.Len(t, spans, 7)
	root := spans["invoke_agent support-bot"]
	assert.NotEqual(t, otelbridge.TraceID(inst.ID()), root.SpanContext().TraceID(), "the provider chose the IDs")
	bySID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		assert.Equal(t, root.SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
		bySID[s.SpanContext().SpanID()] = s
		if s != root {
			// The trace ID does not say the instance: the attribute does.
			assert.Equal(t, inst.ID().String(), attrMap(s.Attributes())[otelbridge.KeyInstanceID].AsString(), s.Name())
			id, ok := otelbridge.IdentityOf(s)
			require.True(t, ok, s.Name())
			assert.Equal(t, inst.ID(), id.InstanceID, s.Name())
		}
	}
	// Parent links are kept by mapping: the LLM call is under the agent
	// span, which is under the root.
	llm := spans["chat claude-sonnet-4"]
	agent := bySID[llm.Parent().SpanID()]
	require.NotNil(t, agent)
	assert.Equal(t, "invoke_agent planner", agent.Name())
	assert.Equal(t, root.SpanContext().SpanID(), agent.Parent().SpanID())
}

func TestExporterLimits(t *testing.T) {
	f := newFixture(t, []otelbridge.Option{otelbridge.WithAttributeLimits(3, 100)})
	payload := map[string]any{"a": strings.Repeat("é", 80), "b": 1, "c": 2, "d": 3, "e": 4}
	_, s := f.tracer.Start(context.Background(), "retrieval", payload)
	s.End()
	f.flush(t)
	spans := byName(t, f.otel.Ended())
	a := attrMap(spans["retrieval"].Attributes())
	assert.Len(t, a[otelbridge.PrefixPayload+"a"].AsString(), 100, "cut to 100 bytes on a rune boundary")
	assert.Contains(t, a, attribute.Key(otelbridge.PrefixPayload+"c"))
	assert.NotContains(t, a, attribute.Key(otelbridge.PrefixPayload+"d"), "at most 3 flattened attributes")
	assert.Equal(t, []string{otelbridge.PrefixPayload + "a", "attributes"}, a[otelbridge.KeyTruncated].AsStringSlice())
}

func TestExporterSensitivePayloads(t *testing.T) {
	f := newFixture(t, nil)
	_, s := f.tracer.Start(context.Background(), "lookup", map[string]any{"ssn": "123"}, agenttrace.WithSensitive(true))
	s.End()
	f.flush(t)
	a := attrMap(byName(t, f.otel.Ended())["lookup"].Attributes())
	assert.NotContains(t, a, attribute.Key(otelbridge.PrefixPayload+"ssn"), "sensitive payloads need content capture")
}

func TestExporterFailedInstance(t *testing.T) {
	f := newFixture(t, nil)
	ctx, inst := f.tracer.StartInstance(context.Background())
	_, s := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	s.End()
	inst.Fail(errors.New("out of budget"))
	f.flush(t)
	root := byName(t, f.otel.Ended())["invoke_agent support-bot"]
	assert.Equal(t, codes.Error, root.Status().Code)
	assert.Equal(t, "out of budget", root.Status().Description)
	a := attrMap(root.Attributes())
	assert.Equal(t, "failed", a[otelbridge.KeyInstanceStatus].AsString())
	assert.Equal(t, "error", a[otelbridge.KeyErrorType].AsString())
}

func TestExporterDefaultInstance(t *testing.T) {
	f := newFixture(t, nil)
	_, s := f.tracer.Start(context.Background(), "tool", agenttrace.ToolInput{Name: "ping"})
	s.End()
	f.shutdown(t)
	spans := byName(t, f.otel.Ended())
	require.Len(t, spans, 2)
	root := spans["invoke_agent support-bot"]
	assert.True(t, attrMap(root.Attributes())[otelbridge.KeyInstanceDefault].AsBool())
	assert.Equal(t, root.SpanContext().SpanID(), spans["execute_tool ping"].Parent().SpanID())
}

func TestGlobalProviderUntouched(t *testing.T) {
	before := otel.GetTracerProvider()
	f := newFixture(t, []otelbridge.Option{otelbridge.WithContentCapture(true)})
	runAgent(context.Background(), f.tracer)
	f.shutdown(t)
	require.NotEmpty(t, f.otel.Ended())
	assert.Same(t, before, otel.GetTracerProvider())
	_, isSDK := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	assert.False(t, isSDK)
}

func TestExporterConcurrentSafe(t *testing.T) {
	f := newFixture(t, []otelbridge.Option{otelbridge.WithContentCapture(true)})
	const workers, runs = 8, 20
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range runs {
				runAgent(context.Background(), f.tracer)
			}
		}()
	}
	for range workers {
		<-done
	}
	f.shutdown(t)
	spans := f.otel.Ended()
	require.Len(t, spans, workers*runs*7)
	traces := map[trace.TraceID]int{}
	for _, s := range spans {
		traces[s.SpanContext().TraceID()]++
	}
	assert.Len(t, traces, workers*runs)
	for _, n := range traces {
		assert.Equal(t, 7, n)
	}
}

// A span whose instance start was not seen still lands in the instance's
// trace, under the root that the instance's end emits.
func TestExporterUnknownInstance(t *testing.T) {
	sr, tp := newRecordingProvider(t, sdktrace.WithIDGenerator(otelbridge.IDGenerator()))
	exp := otelbridge.NewExporter(tp)
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0)
	known, lost, span := newID(t0, 1), newID(t0, 2), newID(t0, 3)
	// A first instance shows that the provider honours the wanted IDs.
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{{Kind: agenttrace.InstanceStarted, Instance: &agenttrace.InstanceData{ID: known, StartedAt: t0}}}))
	d := agenttrace.SpanData{ID: span, InstanceID: lost, Type: "tool", Status: agenttrace.StatusComplete, CreatedAt: t0, EndedAt: t0.Add(time.Second)}
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{spanRecord(agenttrace.SpanStarted, d)}))
	require.NoError(t, exp.Export(ctx, []agenttrace.Record{{Kind: agenttrace.InstanceEnded, Instance: &agenttrace.InstanceData{
		ID: lost, Status: agenttrace.StatusComplete, StartedAt: t0, EndedAt: t0.Add(2 * time.Second)}}}))
	spans := byName(t, sr.Ended())
	require.Len(t, spans, 2)
	root, tool := spans["invoke_agent"], spans["execute_tool"]
	assert.Equal(t, otelbridge.TraceID(lost), tool.SpanContext().TraceID())
	assert.Equal(t, otelbridge.SpanID(lost), tool.Parent().SpanID())
	assert.Equal(t, otelbridge.SpanID(lost), root.SpanContext().SpanID())
	assert.Equal(t, t0, root.StartTime())
	require.NoError(t, exp.Shutdown(ctx))
	assert.Len(t, sr.Ended(), 3, "the first instance ends at Shutdown")
	assert.True(t, attrMap(byName(t, sr.Ended()[2:])["invoke_agent"].Attributes())[otelbridge.KeyUnfinished].AsBool())
}

func TestIDs(t *testing.T) {
	id := newID(time.Unix(1700000000, 0), 9)
	assert.Equal(t, trace.TraceID(id), otelbridge.TraceID(id))
	sid := otelbridge.SpanID(id)
	assert.Equal(t, id[8:], sid[:])
	var zeroTail agenttrace.ID
	zeroTail[0] = 1
	sid = otelbridge.SpanID(zeroTail)
	assert.True(t, sid.IsValid(), "falls back to the time bytes")

	gen := otelbridge.IDGenerator()
	tid, s1 := gen.NewIDs(context.Background())
	assert.True(t, tid.IsValid())
	assert.True(t, s1.IsValid())
	assert.NotEqual(t, s1, gen.NewSpanID(context.Background(), tid), "random without wanted IDs")
}

// TestExporterToolResultFromRun: the result agenttrace.Run records for a
// tool ({"value": v} for a non-object, the object itself otherwise) is the
// OTel span's tool call result.
func TestExporterToolResultFromRun(t *testing.T) {
	f := newFixture(t, []otelbridge.Option{otelbridge.WithContentCapture(true)})
	ctx, inst := f.tracer.StartInstance(context.Background())
	type order struct {
		Status string `json:"status"`
	}
	_, err := agenttrace.Run(ctx, f.tracer, agenttrace.TypeTool, agenttrace.ToolInput{Name: "count"},
		func(context.Context, *agenttrace.Span) (int, error) { return 42, nil })
	require.NoError(t, err)
	_, err = agenttrace.Run(ctx, f.tracer, agenttrace.TypeTool, agenttrace.ToolInput{Name: "lookup"},
		func(context.Context, *agenttrace.Span) (order, error) { return order{Status: "shipped"}, nil })
	require.NoError(t, err)
	_, err = agenttrace.Run(ctx, f.tracer, agenttrace.TypeTool, agenttrace.ToolInput{Name: "typed"},
		func(_ context.Context, s *agenttrace.Span) (string, error) {
			s.SetResult(agenttrace.ToolOutput{Output: "done", IsError: true})
			return "ignored", nil
		})
	require.NoError(t, err)
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	assert.Equal(t, `42`, attrMap(spans["execute_tool count"].Attributes())[otelbridge.KeyToolCallResult].AsString())
	assert.JSONEq(t, `{"status":"shipped"}`, attrMap(spans["execute_tool lookup"].Attributes())[otelbridge.KeyToolCallResult].AsString())
	ta := attrMap(spans["execute_tool typed"].Attributes())
	assert.Equal(t, `"done"`, ta[otelbridge.KeyToolCallResult].AsString())
	assert.True(t, ta[otelbridge.KeyToolIsError].AsBool())
}

// Attributes the OTel span does not imply are kept: a total that is not the
// sum, an llm span whose operation names another type, a namespaced type.
func TestExporterKeepsWhatTheSpanDoesNotSay(t *testing.T) {
	f := newFixture(t, nil)
	ctx, inst := f.tracer.StartInstance(context.Background())
	_, llm := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Operation: "execute_tool", Model: "m"})
	llm.SetResult(agenttrace.LLMResponse{Usage: &agenttrace.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 20}})
	llm.End()
	_, plain := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	plain.SetResult(agenttrace.LLMResponse{Usage: &agenttrace.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}})
	plain.End()
	_, custom := f.tracer.Start(ctx, "acme:tool", agenttrace.ToolInput{Name: "t"})
	custom.End()
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	odd := attrMap(spans["execute_tool m"].Attributes())
	assert.Equal(t, "llm", odd[otelbridge.KeySpanType].AsString(), "the operation names another type")
	assert.Equal(t, int64(20), odd[otelbridge.KeyTotalTokens].AsInt64(), "the total is not the sum")
	sum := attrMap(spans["chat m"].Attributes())
	assert.NotContains(t, sum, otelbridge.KeySpanType)
	assert.NotContains(t, sum, otelbridge.KeyTotalTokens)
	ns := attrMap(spans["execute_tool t"].Attributes())
	assert.Equal(t, "acme:tool", ns[otelbridge.KeySpanType].AsString())
	for _, name := range []string{"execute_tool m", "chat m", "execute_tool t"} {
		id, ok := otelbridge.IdentityOf(spans[name])
		require.True(t, ok, name)
		assert.Equal(t, inst.ID(), id.InstanceID, name)
		assert.Equal(t, agenttrace.StatusComplete, id.Status, name)
	}
	id, _ := otelbridge.IdentityOf(spans["execute_tool t"])
	assert.Equal(t, "acme:tool", id.Type)
}
