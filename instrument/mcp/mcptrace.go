// Package mcptrace records Model Context Protocol tool calls with
// agenttrace, as middleware for the modelcontextprotocol/go-sdk client and
// server: a tool span per tools/call, failed when the result has IsError
// (error type "tool_error", as the OpenTelemetry MCP conventions say) or the
// call fails, with the trace context carried in params._meta.
//
//	client := mcp.NewClient(impl, nil)
//	client.AddSendingMiddleware(mcptrace.ClientMiddleware(tracer))
//
//	server := mcp.NewServer(impl, nil)
//	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(tracer))
//
// The client's tool span is a child of the span in the call's context and
// joins its instance. When that span is itself an active tool span (a
// framework's tool that calls MCP), the client records no second span, as
// the conventions ask, and sends the outer span's trace context. Its trace context (the OTel identity the
// OpenTelemetry bridge gives it, otelbridge.SpanContext) is injected into
// the request's params._meta as unprefixed traceparent, tracestate and
// baggage keys (SEP-414, the OpenTelemetry MCP semantic conventions); the
// caller's params are copied, never modified.
//
// The server's tool span joins the agenttrace span or instance in the
// handler's context when there is one (a per-session instance the
// application started, say). Otherwise the server starts an instance per
// call, with the session id (WithSessionID) and, as its trace parent, the
// client's span from params._meta, so that an OTel export puts the
// server's work under the client's call. Either way the context the tool
// handler runs in carries the client's span as its OTel remote parent, so a
// tracer with otelbridge.CaptureParent records it on spans started there.
//
// Only tools/call is traced; other methods pass through untouched.
package mcptrace

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// MethodCallTool is the MCP method traced.
const MethodCallTool = "tools/call"

// ErrorTypeTool is the error type of a span whose tool returned a result
// with IsError set.
const ErrorTypeTool = "tool_error"

// ToolError is the error a tool span fails with when the tool's result has
// IsError set: the call succeeded, the tool reported a failure to the model.
type ToolError struct {
	// Tool is the tool's name.
	Tool string
	// Message is the text content of the result.
	Message string
}

// Error implements error.
func (e *ToolError) Error() string {
	if e.Message == "" {
		return "mcp tool " + e.Tool + " returned an error result"
	}
	return e.Message
}

// ErrorType implements agenttrace.ErrorTyper: "tool_error".
func (e *ToolError) ErrorType() string { return ErrorTypeTool }

// Option configures the middleware.
type Option func(*config)

type config struct {
	capture    llmhttp.CaptureMode
	maxContent int
	propagator propagation.TextMapPropagator
}

// WithCapture sets the content capture mode, as llmhttp.WithCapture does
// for the transport: llmhttp.CaptureFull records tool arguments and
// results (and an error result's text in the span's error);
// llmhttp.CaptureMetadata (the default, unless
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns content on)
// records the arguments' size and the result's parts by type, MIME type
// and size; llmhttp.CaptureOff records neither. Every mode keeps the tool
// name, the MCP attributes and whether the result is an error.
func WithCapture(m llmhttp.CaptureMode) Option { return func(c *config) { c.capture = m } }

// WithContent is WithCapture(llmhttp.CaptureFull) when on, and
// WithCapture(llmhttp.CaptureMetadata) when not.
func WithContent(on bool) Option {
	if on {
		return WithCapture(llmhttp.CaptureFull)
	}
	return WithCapture(llmhttp.CaptureMetadata)
}

// WithMaxContentBytes caps the content captured per tool call, arguments
// and result together (default llmhttp.DefaultMaxContentBytes): a cut value
// is kept as a string and counted in llmhttp.ReadStats. n <= 0 keeps the
// default.
func WithMaxContentBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxContent = n
		}
	}
}

// WithPropagator replaces the propagator that writes and reads the trace
// context in params._meta (default: W3C trace context and baggage).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.propagator = p
		}
	}
}

func newConfig(opts []Option) config {
	c := config{propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	c.capture = llmhttp.ResolveCapture(c.capture)
	return c
}

// toolPayload is the payload of an MCP tool span: agenttrace.ToolInput's
// fields and the MCP attributes of the conventions.
type toolPayload struct {
	Name      string `json:"tool_name"`
	Arguments any    `json:"arguments,omitempty"`
	// ArgumentsSize is the size of the arguments' JSON when they are not
	// captured (CaptureMetadata).
	ArgumentsSize int    `json:"arguments_size,omitempty"`
	Method        string `json:"mcp_method"`
	SessionID     string `json:"mcp_session_id,omitempty"`
	// Side is "client" or "server".
	Side string `json:"mcp_side"`
}

// ClientMiddleware returns sending middleware for an mcp.Client
// (Client.AddSendingMiddleware): a tool span per tools/call it sends, its
// trace context injected into params._meta.
func ClientMiddleware(tracer *agenttrace.Tracer, opts ...Option) mcp.Middleware {
	cfg := newConfig(opts)
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			params, session, with := clientCall(method, req)
			if params == nil {
				return next(ctx, method, req)
			}
			// Send a copy of the params with the span's trace context in
			// _meta: the caller's value stays as it was.
			sent := *params
			if outer := agenttrace.SpanFromContext(ctx); outer != nil && outer.Type() == agenttrace.TypeTool && !outer.Status().Finished() {
				// A framework already records this tool call (an eino or
				// langchaingo tool that calls MCP): as the conventions ask,
				// no second span; the server nests under the outer one.
				sent.Meta = cfg.inject(ctx, params.Meta)
				return next(ctx, method, with(&sent))
			}
			in := toolPayload{Name: params.Name, Method: method, Side: "client"}
			if session != nil {
				in.SessionID = session.ID()
			}
			cc := cfg.content()
			switch {
			case params.Arguments == nil:
			case cc.Full():
				in.Arguments = cc.Value(params.Arguments)
			case cc.Structure():
				if b, err := json.Marshal(params.Arguments); err == nil {
					in.ArgumentsSize = len(b)
				}
			}
			ctx, span := tracer.Start(ctx, agenttrace.TypeTool, in, agenttrace.WithName(method+" "+params.Name))
			sent.Meta = cfg.inject(ctx, params.Meta)
			res, err := next(ctx, method, with(&sent))
			finish(span, params.Name, res, err, cc)
			return res, err
		}
	}
}

// clientCall returns the params of a tools/call request a client sends, its
// session, and a function that makes the same request with other params;
// nil params for any other request.
func clientCall(method string, req mcp.Request) (*mcp.CallToolParams, *mcp.ClientSession, func(*mcp.CallToolParams) mcp.Request) {
	if method != MethodCallTool {
		return nil, nil, nil
	}
	switch r := req.(type) {
	case *mcp.ClientRequest[mcp.Params]:
		if p, ok := r.Params.(*mcp.CallToolParams); ok && p != nil {
			return p, r.Session, func(p *mcp.CallToolParams) mcp.Request {
				out := *r
				out.Params = p
				return &out
			}
		}
	case *mcp.ClientRequest[*mcp.CallToolParams]:
		if r.Params != nil {
			return r.Params, r.Session, func(p *mcp.CallToolParams) mcp.Request {
				out := *r
				out.Params = p
				return &out
			}
		}
	}
	return nil, nil, nil
}

// ServerMiddleware returns receiving middleware for an mcp.Server
// (Server.AddReceivingMiddleware): a tool span per tools/call it receives,
// under the trace context found in params._meta.
func ServerMiddleware(tracer *agenttrace.Tracer, opts ...Option) mcp.Middleware {
	cfg := newConfig(opts)
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			sreq, ok := req.(*mcp.ServerRequest[*mcp.CallToolParamsRaw])
			if method != MethodCallTool || !ok || sreq.Params == nil {
				return next(ctx, method, req)
			}
			params := sreq.Params
			in := toolPayload{Name: params.Name, Method: method, Side: "server"}
			if sreq.Session != nil {
				in.SessionID = sreq.Session.ID()
			}
			cc := cfg.content()
			switch {
			case len(params.Arguments) == 0:
			case cc.Full():
				in.Arguments = jsonOrText(cc, params.Arguments)
			case cc.Structure():
				in.ArgumentsSize = len(params.Arguments)
			}
			remote := cfg.extract(ctx, params.Meta)
			var inst *agenttrace.Instance
			if agenttrace.SpanFromContext(ctx) == nil && agenttrace.InstanceFromContext(ctx) == nil {
				iopts := []agenttrace.InstanceOption{agenttrace.WithMetadata(map[string]string{"mcp.tool": params.Name})}
				if in.SessionID != "" {
					iopts = append(iopts, agenttrace.WithSessionID(in.SessionID))
				}
				if sc := trace.SpanContextFromContext(remote); sc.IsValid() && sc.IsRemote() {
					iopts = append(iopts, agenttrace.WithTraceParent(agenttrace.TraceParent{
						TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags()),
					}))
				}
				remote, inst = tracer.StartInstance(remote, iopts...)
			}
			ctx, span := tracer.Start(remote, agenttrace.TypeTool, in, agenttrace.WithName(method+" "+params.Name))
			res, err := next(ctx, method, req)
			finish(span, params.Name, res, err, cc)
			if inst != nil {
				if err != nil {
					inst.Fail(err)
				} else {
					inst.End()
				}
			}
			return res, err
		}
	}
}

// content returns the capture of one tool call.
func (c config) content() *llmhttp.Content { return llmhttp.NewContent(c.capture, c.maxContent) }

// inject returns a copy of meta with the trace context of the span in ctx.
func (c config) inject(ctx context.Context, meta mcp.Meta) mcp.Meta {
	carrier := propagation.MapCarrier{}
	sc := otelbridge.SpanContext(ctx)
	if sc.IsValid() {
		if ts := trace.SpanContextFromContext(ctx).TraceState(); ts.Len() > 0 {
			sc = sc.WithTraceState(ts)
		}
		c.propagator.Inject(trace.ContextWithRemoteSpanContext(ctx, sc), carrier)
	}
	if len(carrier) == 0 {
		return meta
	}
	out := make(mcp.Meta, len(meta)+len(carrier))
	for k, v := range meta {
		out[k] = v
	}
	for k, v := range carrier {
		out[k] = v
	}
	return out
}

// extract returns ctx with the trace context found in meta, if any.
func (c config) extract(ctx context.Context, meta mcp.Meta) context.Context {
	if len(meta) == 0 {
		return ctx
	}
	carrier := propagation.MapCarrier{}
	for k, v := range meta {
		if s, ok := v.(string); ok {
			carrier[k] = s
		}
	}
	return c.propagator.Extract(ctx, carrier)
}

// finish ends a tool span with the call's outcome.
func finish(span *agenttrace.Span, tool string, res mcp.Result, err error, cc *llmhttp.Content) {
	if err != nil {
		span.Fail(err)
		return
	}
	r, _ := res.(*mcp.CallToolResult)
	if r == nil {
		span.End()
		return
	}
	out := agenttrace.ToolOutput{IsError: r.IsError}
	msg := ""
	switch {
	case cc.Full():
		if r.IsError {
			msg = cc.Text(text(r.Content))
		}
		if r.StructuredContent != nil {
			out.Output = cc.Value(r.StructuredContent)
		} else if len(r.Content) > 0 {
			out.Output = cc.Value(r.Content)
		}
		cc.Mark(nil)
	case cc.Structure():
		if parts := partsOf(r.Content); len(parts) > 0 {
			out.Output = parts
		}
	}
	span.SetResult(out)
	if r.IsError {
		span.Fail(&ToolError{Tool: tool, Message: msg})
		return
	}
	span.End()
}

// partsOf describes a result's content without it: each part's type, MIME
// type and size.
func partsOf(parts []mcp.Content) []agenttrace.ContentPart {
	var out []agenttrace.ContentPart
	for _, p := range parts {
		switch p := p.(type) {
		case *mcp.TextContent:
			out = append(out, agenttrace.ContentPart{Type: agenttrace.PartText, Size: int64(len(p.Text))})
		case *mcp.ImageContent:
			out = append(out, agenttrace.ContentPart{Type: agenttrace.PartImage, MIMEType: p.MIMEType, Size: int64(len(p.Data))})
		case *mcp.AudioContent:
			out = append(out, agenttrace.ContentPart{Type: agenttrace.PartAudio, MIMEType: p.MIMEType, Size: int64(len(p.Data))})
		case *mcp.ResourceLink:
			part := agenttrace.ContentPart{Type: "resource_link", MIMEType: p.MIMEType}
			if p.Size != nil {
				part.Size = *p.Size
			}
			out = append(out, part)
		case *mcp.EmbeddedResource:
			part := agenttrace.ContentPart{Type: "resource"}
			if rc := p.Resource; rc != nil {
				part.MIMEType, part.Size = rc.MIMEType, int64(len(rc.Text)+len(rc.Blob))
			}
			out = append(out, part)
		case nil:
		default:
			out = append(out, agenttrace.ContentPart{Type: "unknown"})
		}
	}
	return out
}

// text is the text content of a result.
func text(parts []mcp.Content) string {
	var b strings.Builder
	for _, p := range parts {
		if t, ok := p.(*mcp.TextContent); ok {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// jsonOrText is b, within the budget, as raw JSON when it is JSON and as
// text otherwise.
func jsonOrText(cc *llmhttp.Content, b json.RawMessage) any {
	if json.Valid(b) {
		return cc.JSON(string(b))
	}
	return cc.Text(string(b))
}
