package otelbridge_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// sdkCall records an OTel span as anthropic-sdk-go does for one
// messages.create call: a CLIENT span with the SDK's attribute spelling
// (gen_ai.usage.cache_write.input_tokens, anthropic.message.stop_reason,
// an inclusive input token count).
func sdkCall(ctx context.Context, tr trace.Tracer, model string) {
	_, s := tr.Start(ctx, "anthropic.messages.create", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		otelbridge.KeyOperationName.String("chat"), otelbridge.KeyProviderName.String("anthropic"),
		otelbridge.KeyRequestModel.String(model)))
	s.SetAttributes(
		otelbridge.KeyResponseModel.String(model), otelbridge.KeyResponseID.String("msg_1"),
		otelbridge.KeyUsageInputTokens.Int64(1110), otelbridge.KeyUsageOutputTokens.Int64(20),
		otelbridge.KeyUsageCacheReadInputTokens.Int64(100),
		attribute.Int64("gen_ai.usage.cache_write.input_tokens", 1000),
		attribute.Int64("anthropic.usage.cache_creation.ephemeral_5m_input_tokens", 600),
		attribute.Int64("anthropic.usage.cache_creation.ephemeral_1h_input_tokens", 400),
		attribute.String("anthropic.message.stop_reason", "end_turn"),
		otelbridge.KeyResponseTimeToFirstChunk.Float64(0.001))
	s.End()
}

// OTel spans started inside an agenttrace span, through ContextWithSpan or
// from its context alone, join that span and its instance; two calls in one
// trace are two groups, neither dropped.
func TestProcessorJoinsAgenttraceSpan(t *testing.T) {
	for _, viaBridge := range []bool{true, false} {
		name := "plain context"
		if viaBridge {
			name = "ContextWithSpan"
		}
		t.Run(name, func(t *testing.T) {
			tp, tr, rec, p := newProcessorFixture(t)
			ctx, inst := tr.StartInstance(context.Background())
			ctx, agent := tr.Start(ctx, "agent", agenttrace.AgentInput{Name: "support"})
			octx := ctx
			if viaBridge {
				octx = otelbridge.ContextWithSpan(ctx)
			}
			sdkCall(octx, tp.Tracer("anthropic"), "claude-sonnet-4-5")
			sdkCall(octx, tp.Tracer("anthropic"), "claude-haiku-4-5")
			// A tool runner: invoke_agent > execute_tool, in the same context.
			rctx, run := tp.Tracer("anthropic").Start(octx, "invoke_agent runner", trace.WithAttributes(otelbridge.KeyOperationName.String("invoke_agent")))
			_, tool := tp.Tracer("anthropic").Start(rctx, "execute_tool weather", trace.WithAttributes(
				otelbridge.KeyOperationName.String("execute_tool"), otelbridge.KeyToolName.String("weather")))
			tool.SetStatus(codes.Error, "")
			tool.SetAttributes(otelbridge.KeyErrorType.String("tool_error"))
			tool.End()
			run.End()
			require.NoError(t, tr.Flush(context.Background()))
			assert.Equal(t, agenttrace.StatusActive, inst.Status(), "the caller's instance is the caller's to end")
			agent.End()
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))

			assert.Zero(t, p.Dropped())
			require.Len(t, rec.Instances(), 1, "no instance of their own")
			assert.Equal(t, "agent complete\n"+
				"  llm anthropic.messages.create complete\n"+
				"  llm anthropic.messages.create complete\n"+
				"  agent invoke_agent runner complete\n"+
				"    tool execute_tool weather failed\n",
				rec.Tree(inst.ID()))
			llms := rec.SpansOfType("llm")
			require.Len(t, llms, 2)
			for _, l := range llms {
				assert.Equal(t, agent.ID(), l.ParentID)
				require.NotNil(t, l.Usage)
				assert.Equal(t, agenttrace.Usage{PromptTokens: 1110, CompletionTokens: 20, TotalTokens: 1130, Details: map[string]int64{
					agenttrace.UsageCacheRead: 100, agenttrace.UsageCacheWrite: 1000, agenttrace.UsageCacheWrite5m: 600, agenttrace.UsageCacheWrite1h: 400,
				}}, *l.Usage)
				assert.JSONEq(t, `"end_turn"`, jsonField(t, l.Result, "finish_reason"))
				assert.Equal(t, time.Millisecond, l.TimeToFirstToken())
			}
			tools := rec.SpansOfType("tool")
			require.Len(t, tools, 1)
			assert.Equal(t, "tool_error", tools[0].Error.Type)
			assert.Equal(t, "tool_error", tools[0].Error.Message, "no description: the error type")
			sum := inst.Summary()
			require.NotNil(t, sum.Usage)
			assert.Equal(t, int64(2220), sum.Usage.PromptTokens)
			assert.Equal(t, int64(2), sum.LLMCalls)
		})
	}
}

// An instance that ended before the OTel spans were replayed cannot take
// them: they get an instance of their own.
func TestProcessorJoinEndedInstance(t *testing.T) {
	tp, tr, rec, _ := newProcessorFixture(t)
	ctx, inst := tr.StartInstance(context.Background())
	ctx, span := tr.Start(ctx, "agent", nil)
	octx, root := tp.Tracer("app").Start(otelbridge.ContextWithSpan(ctx), "invoke_agent late", trace.WithAttributes(otelbridge.KeyOperationName.String("invoke_agent")))
	sdkCall(octx, tp.Tracer("anthropic"), "claude-sonnet-4-5")
	span.End()
	inst.End()
	root.End()
	require.NoError(t, tr.Flush(context.Background()))
	insts := rec.Instances()
	require.Len(t, insts, 2)
	assert.Equal(t, "agent invoke_agent late complete\n  llm anthropic.messages.create complete\n", rec.Tree(insts[1].ID))
}

// jsonField returns the raw JSON of a top-level field of a payload.
func jsonField(t *testing.T, payload []byte, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(payload, &m))
	return string(m[field])
}
