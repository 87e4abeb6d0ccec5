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
// joins its instance. Its trace context (the OTel identity the
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
	"os"
	"strings"

	"github.com/agenttrace/agenttrace"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
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
	content    bool
	propagator propagation.TextMapPropagator
}

// WithContent turns the capture of tool arguments and results on or off.
// The default is off, as the OpenTelemetry GenAI conventions ask, unless
// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is "true".
func WithContent(on bool) Option { return func(c *config) { c.content = on } }

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
	c := config{
		content:    strings.EqualFold(os.Getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"), "true"),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// toolPayload is the payload of an MCP tool span: agenttrace.ToolInput's
// fields and the MCP attributes of the conventions.
type toolPayload struct {
	Name      string `json:"tool_name"`
	Arguments any    `json:"arguments,omitempty"`
	Method    string `json:"mcp_method"`
	SessionID string `json:"mcp_session_id,omitempty"`
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
			in := toolPayload{Name: params.Name, Method: method, Side: "client"}
			if session != nil {
				in.SessionID = session.ID()
			}
			if cfg.content && params.Arguments != nil {
				in.Arguments = params.Arguments
			}
			ctx, span := tracer.Start(ctx, agenttrace.TypeTool, in, agenttrace.WithName(method+" "+params.Name))
			// Send a copy of the params with the span's trace context in
			// _meta: the caller's value stays as it was.
			sent := *params
			sent.Meta = cfg.inject(ctx, params.Meta)
			res, err := next(ctx, method, with(&sent))
			finish(span, params.Name, res, err, cfg.content)
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
			if cfg.content && len(params.Arguments) > 0 {
				in.Arguments = rawOrString(params.Arguments)
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
			finish(span, params.Name, res, err, cfg.content)
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
func finish(span *agenttrace.Span, tool string, res mcp.Result, err error, content bool) {
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
	if content {
		if r.StructuredContent != nil {
			out.Output = r.StructuredContent
		} else {
			out.Output = r.Content
		}
	}
	span.SetResult(out)
	if r.IsError {
		span.Fail(&ToolError{Tool: tool, Message: text(r.Content, content)})
		return
	}
	span.End()
}

// text is the text content of a result, when content is captured.
func text(parts []mcp.Content, content bool) string {
	if !content {
		return ""
	}
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

func rawOrString(b json.RawMessage) any {
	if json.Valid(b) {
		return b
	}
	return string(b)
}
