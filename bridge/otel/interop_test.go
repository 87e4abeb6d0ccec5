package otelbridge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// newCaptureFixture is newFixture with CaptureParent on the tracer.
func newCaptureFixture(t *testing.T, opts ...otelbridge.Option) *fixture {
	t.Helper()
	return newFixtureWith(t, opts, []agenttrace.Option{otelbridge.CaptureParent()})
}

// otelhttp-style: a server span holds the agent run; the instance's root,
// an llm span beneath it and an OTel client span started from the llm
// span's context are all in the request's trace, nested in that order.
func TestInstanceInsideOTelSpan(t *testing.T) {
	f := newCaptureFixture(t)
	reqCtx, req := f.tp.Tracer("net/http").Start(context.Background(), "POST /chat", trace.WithSpanKind(trace.SpanKindServer))
	ctx, inst := f.tracer.StartInstance(reqCtx)
	lctx, llm := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	_, call := f.tp.Tracer("net/http").Start(otelbridge.ContextWithSpan(lctx), "POST /v1/chat/completions", trace.WithSpanKind(trace.SpanKindClient))
	call.End()
	llm.End()
	inst.End()
	req.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	root := spans["invoke_agent support-bot"]
	require.NotNil(t, root)
	assert.Equal(t, rsc.TraceID(), root.SpanContext().TraceID())
	assert.Equal(t, rsc.SpanID(), root.Parent().SpanID())
	assert.True(t, root.Parent().IsRemote())
	assert.Equal(t, otelbridge.SpanID(inst.ID()), root.SpanContext().SpanID())
	chat := spans["chat m"]
	assert.Equal(t, rsc.TraceID(), chat.SpanContext().TraceID())
	assert.Equal(t, root.SpanContext().SpanID(), chat.Parent().SpanID())
	assert.Equal(t, otelbridge.SpanID(llm.ID()), chat.SpanContext().SpanID())
	// In the request's trace, the trace ID does not say the instance.
	assert.Equal(t, inst.ID().String(), attrMap(chat.Attributes())[otelbridge.KeyInstanceID].AsString())
	if id, ok := otelbridge.IdentityOf(chat); assert.True(t, ok) {
		assert.Equal(t, otelbridge.Identity{InstanceID: inst.ID(), SpanID: llm.ID(), Type: "llm", Status: agenttrace.StatusComplete}, id)
	}
	client := spans["POST /v1/chat/completions"]
	assert.Equal(t, rsc.TraceID(), client.SpanContext().TraceID())
	assert.Equal(t, chat.SpanContext().SpanID(), client.Parent().SpanID())

	// SpanContext follows the instance into the request's trace.
	assert.Equal(t, rsc.TraceID(), otelbridge.SpanContext(ctx).TraceID())
	assert.Equal(t, rsc.TraceID(), otelbridge.SpanContext(lctx).TraceID())
	// The captured context is in the records, for every exporter.
	insts := f.rec.Instances()
	require.Len(t, insts, 1)
	require.NotNil(t, insts[0].TraceParent)
	assert.Equal(t, [16]byte(rsc.TraceID()), insts[0].TraceParent.TraceID)
	assert.Equal(t, [8]byte(rsc.SpanID()), insts[0].TraceParent.SpanID)
	assert.Equal(t, byte(rsc.TraceFlags()), insts[0].TraceParent.Flags)
}

// Without CaptureParent nothing is captured: the run is a trace of its own.
func TestNoCaptureWithoutOption(t *testing.T) {
	f := newFixture(t, nil)
	reqCtx, req := f.tp.Tracer("app").Start(context.Background(), "GET /chat")
	ctx, inst := f.tracer.StartInstance(reqCtx)
	_, llm := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	llm.End()
	inst.End()
	req.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	root := spans["invoke_agent support-bot"]
	assert.Equal(t, otelbridge.TraceID(inst.ID()), root.SpanContext().TraceID())
	assert.False(t, root.Parent().IsValid())
	assert.Equal(t, otelbridge.TraceID(inst.ID()), spans["chat m"].SpanContext().TraceID())
	d, ok := f.rec.Span(llm.ID())
	require.True(t, ok)
	assert.Nil(t, d.TraceParent)
}

// agenttrace.WithTraceParent places one instance explicitly, without
// CaptureParent (a run continued from a traceparent received elsewhere).
func TestExplicitTraceParent(t *testing.T) {
	f := newFixture(t, nil)
	remote := agenttrace.TraceParent{TraceID: [16]byte{0xa, 1}, SpanID: [8]byte{0xb, 2}, Flags: 1}
	ctx, inst := f.tracer.StartInstance(context.Background(), agenttrace.WithTraceParent(remote))
	_, llm := f.tracer.Start(ctx, "llm", agenttrace.LLMRequest{Model: "m"})
	llm.End()
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	root := spans["invoke_agent support-bot"]
	assert.Equal(t, trace.TraceID(remote.TraceID), root.SpanContext().TraceID())
	assert.Equal(t, trace.SpanID(remote.SpanID), root.Parent().SpanID())
	assert.Equal(t, root.SpanContext().SpanID(), spans["chat m"].Parent().SpanID())
	assert.Equal(t, trace.TraceID(remote.TraceID), otelbridge.SpanContext(ctx).TraceID())
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
	f := newCaptureFixture(t)
	ctx, inst := f.tracer.StartInstance(context.Background())
	actx, a := f.tracer.Start(ctx, "chain", nil, agenttrace.WithName("a"))
	octx, o := f.tp.Tracer("app").Start(otelbridge.ContextWithSpan(actx), "otel-o")
	bctx, b := f.tracer.Start(octx, "b", nil)
	_, c := f.tracer.Start(bctx, "c", nil)
	_, d := f.tracer.Start(actx, "d", nil) // beside o, under a
	_, e := f.tp.Tracer("app").Start(otelbridge.ContextWithSpan(bctx), "otel-e")
	e.End()
	for _, s := range []*agenttrace.Span{c, d, b} {
		s.End()
	}
	o.End()
	a.End()
	inst.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	require.Len(t, spans, 7)
	tid := otelbridge.TraceID(inst.ID())
	for name, s := range spans {
		assert.Equal(t, tid, s.SpanContext().TraceID(), name)
	}
	sid := func(name string) trace.SpanID { return spans[name].SpanContext().SpanID() }
	assert.Equal(t, sid("invoke_agent support-bot"), spans["chain"].Parent().SpanID())
	assert.Equal(t, sid("chain"), spans["otel-o"].Parent().SpanID())
	assert.Equal(t, sid("otel-o"), spans["b"].Parent().SpanID(), "b was started inside o")
	assert.Equal(t, sid("b"), spans["c"].Parent().SpanID(), "o around b is not a nearer parent of c")
	assert.Equal(t, sid("chain"), spans["d"].Parent().SpanID())
	assert.Equal(t, sid("b"), spans["otel-e"].Parent().SpanID())
	assert.Equal(t, otelbridge.SpanID(b.ID()), sid("b"))
}

// A span of the default instance started inside an OTel request joins the
// request's trace, and so do its children and the OTel spans started from
// them.
func TestSpanInsideOTelRequest(t *testing.T) {
	f := newCaptureFixture(t)
	reqCtx, req := f.tp.Tracer("app").Start(context.Background(), "POST /run")
	sctx, s := f.tracer.Start(reqCtx, "llm", agenttrace.LLMRequest{Model: "m"})
	_, child := f.tracer.Start(sctx, "tool", agenttrace.ToolInput{Name: "t"})
	_, db := f.tp.Tracer("db").Start(otelbridge.ContextWithSpan(sctx), "SELECT")
	db.End()
	child.End()
	s.End()
	req.End()
	f.shutdown(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	chat, tool, sel := spans["chat m"], spans["execute_tool t"], spans["SELECT"]
	assert.Equal(t, rsc.SpanID(), chat.Parent().SpanID())
	for _, sp := range []trace.SpanContext{chat.SpanContext(), tool.SpanContext(), sel.SpanContext()} {
		assert.Equal(t, rsc.TraceID(), sp.TraceID())
	}
	assert.Equal(t, chat.SpanContext().SpanID(), tool.Parent().SpanID())
	assert.Equal(t, chat.SpanContext().SpanID(), sel.Parent().SpanID())
}

// With CaptureParent, plain tracer.Start and StartInstance follow OTel
// parents: an otelhttp-style server span holds the agent run, and an OTel
// span inside an agenttrace span holds the agenttrace span started in it.
func TestCaptureParent(t *testing.T) {
	f := newCaptureFixture(t)
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

// The default instance lives until Shutdown: what the Exporter keeps to
// nest spans is bounded by the open spans, not by every span the instance
// ever had, and nesting stays right well past the open-span limit, for
// children of open parents, of parents delivered already finished, and of
// parents whose end was delivered before the child started.
func TestCaptureLongRunningDefaultInstance(t *testing.T) {
	f := newCaptureFixture(t, otelbridge.WithMaxOpenSpans(4))
	reqCtx, req := f.tp.Tracer("app").Start(context.Background(), "serve")
	const n = 12
	for i := range n {
		pctx, p := f.tracer.Start(reqCtx, fmt.Sprint("p", i), nil)
		switch i % 3 {
		case 0: // the parent is open in the exporter when the child starts
			f.flush(t)
			_, c := f.tracer.Start(pctx, fmt.Sprint("c", i), nil)
			c.End()
			p.End()
		case 1: // both are delivered finished in one batch
			_, c := f.tracer.Start(pctx, fmt.Sprint("c", i), nil)
			c.End()
			p.End()
		case 2: // the child starts after its parent's end was delivered
			p.End()
			f.flush(t)
			_, c := f.tracer.Start(pctx, fmt.Sprint("c", i), nil)
			c.End()
		}
		f.flush(t)
	}
	req.End()
	f.flush(t)

	spans := byName(t, f.otel.Ended())
	rsc := req.SpanContext()
	for i := range n {
		p, c := spans[fmt.Sprint("p", i)], spans[fmt.Sprint("c", i)]
		require.NotNil(t, p, i)
		require.NotNil(t, c, i)
		assert.Equal(t, rsc.SpanID(), p.Parent().SpanID(), "p%d is under the request", i)
		assert.Equal(t, rsc.TraceID(), c.SpanContext().TraceID(), "c%d is in the request's trace", i)
		assert.Equal(t, p.SpanContext().SpanID(), c.Parent().SpanID(), "c%d is under p%d", i, i)
	}
}
