package otelbridge_test

import (
	"context"
	"testing"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestInstanceInsideOTelSpan(t *testing.T) {
	f := newFixture(t, nil)
	reqCtx, req := f.tp.Tracer("app").Start(context.Background(), "GET /chat")
	ctx, inst := f.tracer.StartInstance(reqCtx, otelbridge.WithParent(reqCtx))
	_, llm := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	llm.End()
	inst.End()
	req.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	root := spans["invoke_agent support-bot"]
	assert.Equal(t, rsc.TraceID(), root.SpanContext().TraceID())
	assert.Equal(t, rsc.SpanID(), root.Parent().SpanID())
	assert.True(t, root.Parent().IsRemote())
	assert.Equal(t, otelbridge.SpanID(inst.ID()), root.SpanContext().SpanID())
	chat := spans["chat m"]
	assert.Equal(t, rsc.TraceID(), chat.SpanContext().TraceID())
	assert.Equal(t, root.SpanContext().SpanID(), chat.Parent().SpanID())

	// SpanContext follows the instance into the request's trace.
	assert.Equal(t, rsc.TraceID(), otelbridge.SpanContext(ctx).TraceID())
	assert.Nil(t, otelbridge.WithParent(context.Background()), "no OTel span: no option")
}

func TestOTelSpanInsideAgenttraceSpan(t *testing.T) {
	f := newFixture(t, nil)
	ctx, inst := f.tracer.StartInstance(context.Background())
	actx, tool := f.tracer.Start(ctx, "tool", agenttrace.ToolInput{Name: "fetch"})
	_, httpSpan := f.tp.Tracer("net/http").Start(otelbridge.ContextWithSpan(actx), "GET /orders")
	httpSpan.End()
	tool.End()
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	h, ft := spans["GET /orders"], spans["execute_tool fetch"]
	assert.Equal(t, ft.SpanContext().TraceID(), h.SpanContext().TraceID())
	assert.Equal(t, ft.SpanContext().SpanID(), h.Parent().SpanID())
	assert.Equal(t, otelbridge.TraceID(inst.ID()), h.SpanContext().TraceID())

	sc := otelbridge.SpanContext(ctx)
	assert.Equal(t, otelbridge.SpanID(inst.ID()), sc.SpanID(), "an instance alone: its root")
	assert.True(t, sc.IsRemote())
	assert.False(t, otelbridge.SpanContext(context.Background()).IsValid())
	bg := context.Background()
	assert.Equal(t, bg, otelbridge.ContextWithSpan(bg))
}

// agenttrace -> OTel -> agenttrace -> agenttrace: each nests under the span
// it was started in.
func TestNestingBothWays(t *testing.T) {
	f := newFixture(t, nil)
	ctx, inst := f.tracer.StartInstance(context.Background())
	actx, a := f.exp.Start(ctx, f.tracer, "chain", nil, agenttrace.WithName("a"))
	octx, o := f.tp.Tracer("app").Start(actx, "otel-o")
	bctx, b := f.exp.Start(octx, f.tracer, "b", nil)
	_, c := f.exp.Start(bctx, f.tracer, "c", nil)
	_, d := f.exp.Start(actx, f.tracer, "d", nil) // beside o, under a
	for _, s := range []*agenttrace.Span{c, d, b} {
		s.End()
	}
	o.End()
	a.End()
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	require.Len(t, spans, 6)
	tid := otelbridge.TraceID(inst.ID())
	for name, s := range spans {
		assert.Equal(t, tid, s.SpanContext().TraceID(), name)
	}
	sid := func(name string) trace.SpanID { return spans[name].SpanContext().SpanID() }
	assert.Equal(t, sid("invoke_agent support-bot"), spans["chain"].Parent().SpanID())
	assert.Equal(t, sid("chain"), spans["otel-o"].Parent().SpanID())
	assert.Equal(t, sid("otel-o"), spans["b"].Parent().SpanID(), "b was started inside o")
	assert.Equal(t, sid("b"), spans["c"].Parent().SpanID())
	assert.Equal(t, sid("chain"), spans["d"].Parent().SpanID())
	assert.Equal(t, otelbridge.SpanID(b.ID()), sid("b"))
}

// A span of the default instance started inside an OTel request joins the
// request's trace, and so do its children.
func TestSpanInsideOTelRequest(t *testing.T) {
	f := newFixture(t, nil)
	reqCtx, req := f.tp.Tracer("app").Start(context.Background(), "POST /run")
	sctx, s := f.exp.Start(reqCtx, f.tracer, "llm", agenttrace.LLMRequest{Model: "m"})
	_, child := f.exp.Start(sctx, f.tracer, "tool", agenttrace.ToolInput{Name: "t"})
	_, plain := f.tracer.Start(sctx, "tool", agenttrace.ToolInput{Name: "plain"})
	plain.End()
	child.End()
	s.End()
	req.End()
	f.shutdown(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	chat, tool, plainSpan := spans["chat m"], spans["execute_tool t"], spans["execute_tool plain"]
	assert.Equal(t, rsc.SpanID(), chat.Parent().SpanID())
	for _, sp := range []trace.SpanContext{chat.SpanContext(), tool.SpanContext(), plainSpan.SpanContext()} {
		assert.Equal(t, rsc.TraceID(), sp.TraceID())
	}
	assert.Equal(t, chat.SpanContext().SpanID(), tool.Parent().SpanID())
	assert.Equal(t, chat.SpanContext().SpanID(), plainSpan.Parent().SpanID())
}

// With CaptureParent, plain tracer.Start and StartInstance follow OTel
// parents: an otelhttp-style server span holds the agent run, and an OTel
// span inside an agenttrace span holds the agenttrace span started in it.
func TestCaptureParent(t *testing.T) {
	f := newFixtureWith(t, nil, []agenttrace.Option{otelbridge.CaptureParent()})
	reqCtx, req := f.tp.Tracer("net/http").Start(context.Background(), "POST /chat", trace.WithSpanKind(trace.SpanKindServer))
	ctx, inst := f.tracer.StartInstance(reqCtx)
	actx, agent := f.tracer.Start(ctx, "agent", agenttrace.AgentInput{Name: "bot"})
	octx, db := f.tp.Tracer("db").Start(otelbridge.ContextWithSpan(actx), "SELECT orders")
	_, tool := f.tracer.Start(agenttrace.ContextWithSpan(octx, agent), "tool", agenttrace.ToolInput{Name: "lookup"})
	_, llm := f.tracer.Start(actx, "llm", agenttrace.LLMRequest{Model: "m"})
	tool.End()
	db.End()
	llm.End()
	agent.End()
	inst.End()
	req.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	root := spans["invoke_agent support-bot"]
	require.NotNil(t, root)
	assert.Equal(t, rsc.TraceID(), root.SpanContext().TraceID(), "the run is inside the request's trace")
	assert.Equal(t, rsc.SpanID(), root.Parent().SpanID())
	ag := spans["invoke_agent bot"]
	assert.Equal(t, root.SpanContext().SpanID(), ag.Parent().SpanID())
	chat := spans["chat m"]
	assert.Equal(t, ag.SpanContext().SpanID(), chat.Parent().SpanID(), "the OTel span around the agent span is not a nearer parent")
	sel := spans["SELECT orders"]
	assert.Equal(t, ag.SpanContext().SpanID(), sel.Parent().SpanID())
	lookup := spans["execute_tool lookup"]
	assert.Equal(t, sel.SpanContext().SpanID(), lookup.Parent().SpanID(), "the OTel span it started in is its parent")
	for _, s := range []string{"invoke_agent bot", "chat m", "SELECT orders", "execute_tool lookup"} {
		assert.Equal(t, rsc.TraceID(), spans[s].SpanContext().TraceID(), s)
	}
	d, ok := f.rec.Span(llm.ID())
	require.True(t, ok)
	require.NotNil(t, d.TraceParent, "other exporters see the captured context too")
}
