package mcptrace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	otelbridge "github.com/agenttrace/agenttrace/bridge/otel"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	mcptrace "github.com/agenttrace/agenttrace/instrument/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type cityArgs struct {
	City string `json:"city"`
}

type weather struct {
	Sky string `json:"sky"`
}

type divArgs struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

type quotient struct {
	Q float64 `json:"q"`
}

// seenMeta keeps the _meta of the calls the server's tools received.
type seenMeta struct {
	mu   sync.Mutex
	meta []map[string]any
}

func (s *seenMeta) add(m map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta = append(s.meta, m)
}

// newServer is an MCP server with two tools: weather, and divide, which
// reports division by zero as a tool error (IsError).
func newServer(tr *agenttrace.Tracer, seen *seenMeta, mw ...mcp.Middleware) *mcp.Server {
	return newServerWith(tr, seen, []mcptrace.Option{mcptrace.WithContent(true)}, mw...)
}

// newServerWith is newServer with the server middleware's options.
func newServerWith(tr *agenttrace.Tracer, seen *seenMeta, opts []mcptrace.Option, mw ...mcp.Middleware) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tools", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "weather", Description: "the weather of a city"},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, weather, error) {
			seen.add(req.Params.Meta)
			// Work of the tool's own nests under the server's tool span.
			_, span := tr.Start(ctx, agenttrace.TypeChain, agenttrace.ChainInput{Name: "forecast"}, agenttrace.WithName("forecast "+in.City))
			span.End()
			return nil, weather{Sky: "sunny"}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "divide", Description: "a / b"},
		func(ctx context.Context, req *mcp.CallToolRequest, in divArgs) (*mcp.CallToolResult, quotient, error) {
			seen.add(req.Params.Meta)
			if in.B == 0 {
				return nil, quotient{}, errors.New("division by zero")
			}
			return nil, quotient{Q: in.A / in.B}, nil
		})
	s.AddReceivingMiddleware(append(mw, mcptrace.ServerMiddleware(tr, opts...))...)
	return s
}

// runAgent is a small agent: an agent span, an llm span that "decides" on
// two tool calls, and the two calls over MCP.
func runAgent(t *testing.T, ctx context.Context, tr *agenttrace.Tracer, cs *mcp.ClientSession) []*mcp.CallToolResult {
	t.Helper()
	ctx, agent := tr.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "calc"}, agenttrace.WithName("calc"))
	defer agent.End()
	_, llm := tr.Start(ctx, agenttrace.TypeLLM, agenttrace.LLMRequest{Model: "fake"}, agenttrace.WithName("plan"))
	llm.SetResult(agenttrace.LLMResponse{ToolCalls: []agenttrace.ToolCall{{ID: "c1", Name: "weather"}, {ID: "c2", Name: "divide"}}})
	llm.End()
	params := &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Paris"}, Meta: mcp.Meta{"app": "x"}}
	w, err := cs.CallTool(ctx, params)
	require.NoError(t, err)
	assert.NotContains(t, params.Meta, "traceparent", "the caller's params are not modified")
	d, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "divide", Arguments: divArgs{A: 1, B: 0}})
	require.NoError(t, err)
	return []*mcp.CallToolResult{w, d}
}

func connect(t *testing.T, ctx context.Context, server *mcp.Server, client *mcp.Client) *mcp.ClientSession {
	t.Helper()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := server.Connect(ctx, st, nil)
	require.NoError(t, err)
	cs, err := client.Connect(ctx, ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

func TestAgentOverMCP(t *testing.T) {
	ctx := context.Background()
	clientTr, clientRec := agenttracetest.New(t)
	serverTr, serverRec := agenttracetest.New(t)
	seen := &seenMeta{}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(clientTr, mcptrace.WithContent(true)))
	cs := connect(t, ctx, newServer(serverTr, seen), client)

	ctx, inst := clientTr.StartInstance(ctx)
	res := runAgent(t, ctx, clientTr, cs)
	inst.End()
	require.False(t, res[0].IsError)
	require.True(t, res[1].IsError)
	require.NoError(t, clientTr.Flush(ctx))
	require.NoError(t, serverTr.Flush(ctx))

	// The client's side: the agent's tree, the tool error failing its span.
	assert.Equal(t, "agent calc complete\n"+
		"  llm plan complete\n"+
		"  tool tools/call weather complete\n"+
		"  tool tools/call divide failed\n", clientRec.Tree(inst.ID()))
	tools := clientRec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, tools, 2)
	assert.JSONEq(t, `{"tool_name":"weather","arguments":{"city":"Paris"},"mcp_method":"tools/call","mcp_side":"client"}`, string(tools[0].Payload))
	assert.JSONEq(t, `{"output":{"sky":"sunny"}}`, string(tools[0].Result))
	assert.Equal(t, &agenttrace.ErrorInfo{Type: "tool_error", Message: "division by zero"}, tools[1].Error)
	assert.JSONEq(t, `true`, jsonField(t, tools[1].Result, "is_error"))

	// The trace context of each client span reached the server in _meta.
	require.Len(t, seen.meta, 2)
	for i, span := range tools {
		tp, ok := seen.meta[i]["traceparent"].(string)
		require.True(t, ok, "traceparent in _meta: %v", seen.meta[i])
		assert.Equal(t, "00-"+otelbridge.TraceID(inst.ID()).String()+"-"+otelbridge.SpanID(span.ID).String()+"-01", tp)
	}
	assert.Equal(t, "x", seen.meta[0]["app"], "the caller's _meta is kept")

	// The server's side: an instance per call, under the client's span.
	insts := serverRec.Instances()
	require.Len(t, insts, 2)
	for i, si := range insts {
		require.NotNil(t, si.TraceParent)
		assert.Equal(t, otelbridge.SpanID(tools[i].ID), trace.SpanID(si.TraceParent.SpanID))
		assert.Equal(t, otelbridge.TraceID(inst.ID()), trace.TraceID(si.TraceParent.TraceID))
	}
	assert.Equal(t, agenttrace.StatusComplete, insts[0].Status)
	assert.Equal(t, "tool tools/call weather complete\n  chain forecast Paris complete\n", serverRec.Tree(insts[0].ID))
	assert.Equal(t, "tool tools/call divide failed\n", serverRec.Tree(insts[1].ID))
	stools := serverRec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, stools, 2)
	assert.JSONEq(t, `{"tool_name":"divide","arguments":{"a":1,"b":0},"mcp_method":"tools/call","mcp_side":"server"}`, string(stools[1].Payload))
	assert.Equal(t, "tool_error", stools[1].Error.Type)
}

// A server middleware that starts an instance per session: the tool spans
// join it instead of starting instances of their own.
func TestServerJoinsContextInstance(t *testing.T) {
	ctx := context.Background()
	serverTr, serverRec := agenttracetest.New(t)
	_, sessionInst := serverTr.StartInstance(ctx, agenttrace.WithSessionID("s-1"))
	perSession := func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			return next(agenttrace.ContextWithInstance(ctx, sessionInst), method, req)
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs := connect(t, ctx, newServer(serverTr, &seenMeta{}, perSession), client)
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Oslo"}})
	require.NoError(t, err)
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "divide", Arguments: divArgs{A: 6, B: 3}})
	require.NoError(t, err)
	sessionInst.End()
	require.NoError(t, serverTr.Flush(ctx))
	require.Len(t, serverRec.Instances(), 1)
	assert.Equal(t, "tool tools/call weather complete\n  chain forecast Oslo complete\ntool tools/call divide complete\n",
		serverRec.Tree(sessionInst.ID()))
}

// Over streamable HTTP on loopback: the session id is recorded, and a
// protocol error (an unknown tool) fails the client's span.
func TestStreamableHTTP(t *testing.T) {
	ctx := context.Background()
	clientTr, clientRec := agenttracetest.New(t)
	serverTr, serverRec := agenttracetest.New(t)
	server := newServer(serverTr, &seenMeta{})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer hs.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(clientTr))
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, nil)
	require.NoError(t, err)
	defer cs.Close()
	require.NotEmpty(t, cs.ID())

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Rome"}})
	require.NoError(t, err)
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"})
	require.Error(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = cs.CallTool(cctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Rome"}})
	require.Error(t, err)
	require.NoError(t, clientTr.Flush(ctx))
	require.NoError(t, serverTr.Flush(ctx))

	tools := clientRec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, tools, 3)
	assert.Equal(t, agenttrace.StatusComplete, tools[0].Status)
	assert.JSONEq(t, `"`+cs.ID()+`"`, jsonField(t, tools[0].Payload, "mcp_session_id"))
	assert.Equal(t, agenttrace.StatusFailed, tools[1].Status)
	assert.Contains(t, tools[1].Error.Message, "nope")
	assert.Equal(t, agenttrace.StatusFailed, tools[2].Status)
	assert.Equal(t, "context.Canceled", tools[2].Error.Type)
	assert.NotContains(t, string(tools[0].Payload), "Rome", "no content without WithContent")

	sinsts := serverRec.Instances()
	require.GreaterOrEqual(t, len(sinsts), 1)
	assert.Equal(t, cs.ID(), sinsts[0].SessionID)
}

func jsonField(t *testing.T, payload []byte, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(payload, &m))
	return string(m[field])
}

// A tool span already open around the call (a framework's tool calling MCP)
// is not doubled: the server nests under it.
func TestOuterToolSpan(t *testing.T) {
	ctx := context.Background()
	clientTr, clientRec := agenttracetest.New(t)
	serverTr, serverRec := agenttracetest.New(t)
	seen := &seenMeta{}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(clientTr))
	cs := connect(t, ctx, newServer(serverTr, seen), client)
	ctx, inst := clientTr.StartInstance(ctx)
	tctx, tool := clientTr.Start(ctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "weather"}, agenttrace.WithName("weather"))
	_, err := cs.CallTool(tctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Lima"}})
	require.NoError(t, err)
	tool.End()
	inst.End()
	require.NoError(t, clientTr.Flush(ctx))
	require.NoError(t, serverTr.Flush(ctx))
	assert.Equal(t, "tool weather complete\n", clientRec.Tree(inst.ID()))
	require.Len(t, seen.meta, 1)
	assert.Equal(t, "00-"+otelbridge.TraceID(inst.ID()).String()+"-"+otelbridge.SpanID(tool.ID()).String()+"-01", seen.meta[0]["traceparent"])
	sinsts := serverRec.Instances()
	require.Len(t, sinsts, 1)
	assert.Equal(t, otelbridge.SpanID(tool.ID()), trace.SpanID(sinsts[0].TraceParent.SpanID))
}

// The capture modes on both sides: metadata (the default) records the
// arguments' size and the result's parts by type and size, off neither,
// full the arguments and results, capped per call (WithMaxContentBytes)
// and seen by the tracer's redactor.
func TestCaptureModes(t *testing.T) {
	redact := func(_ string, _ agenttrace.PayloadField, p []byte) []byte {
		return bytes.ReplaceAll(p, []byte("sunny"), []byte("[sky]"))
	}
	for _, mode := range []llmhttp.CaptureMode{llmhttp.CaptureDefault, llmhttp.CaptureOff, llmhttp.CaptureFull} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Setenv(llmhttp.EnvCaptureContent, "")
			ctx := context.Background()
			clientTr, clientRec := agenttracetest.New(t, agenttrace.WithRedactor(redact))
			serverTr, serverRec := agenttracetest.New(t, agenttrace.WithRedactor(redact))
			opts := []mcptrace.Option{mcptrace.WithCapture(mode), mcptrace.WithMaxContentBytes(40)}
			client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
			client.AddSendingMiddleware(mcptrace.ClientMiddleware(clientTr, opts...))
			cs := connect(t, ctx, newServerWith(serverTr, &seenMeta{}, opts), client)
			res := runAgent(t, ctx, clientTr, cs)
			require.False(t, res[0].IsError)
			require.NoError(t, clientTr.Flush(ctx))
			require.NoError(t, serverTr.Flush(ctx))
			for side, rec := range map[string]*agenttracetest.Recorder{"client": clientRec, "server": serverRec} {
				tools := rec.SpansOfType(agenttrace.TypeTool)
				require.Len(t, tools, 2, side)
				w, d := tools[0], tools[1]
				for _, s := range tools {
					assert.NotContains(t, string(s.Result), "sunny", "%s: redacted or not captured", side)
				}
				assert.Equal(t, "tool_error", d.Error.Type, side)
				switch mode {
				case llmhttp.CaptureDefault:
					assert.Equal(t, "16", jsonField(t, w.Payload, "arguments_size"), side)
					assert.Empty(t, jsonField(t, w.Payload, "arguments"), side)
					assert.JSONEq(t, `[{"type":"text","size":15}]`, jsonField(t, w.Result, "output"), side)
					assert.Equal(t, "mcp tool divide returned an error result", d.Error.Message, "%s: no result text without content", side)
				case llmhttp.CaptureOff:
					assert.Empty(t, jsonField(t, w.Payload, "arguments_size"), side)
					assert.Equal(t, "null", jsonField(t, w.Result, "output"), side)
				case llmhttp.CaptureFull:
					assert.JSONEq(t, `{"city":"Paris"}`, jsonField(t, w.Payload, "arguments"), side)
					assert.Contains(t, string(w.Result), "[sky]", side)
					assert.Equal(t, "division by zero", d.Error.Message, side)
				}
			}
			if mode != llmhttp.CaptureFull {
				return
			}
			// The 40-byte cap: the client's result (the content list's
			// JSON, over 40 bytes with the arguments) is cut to a string.
			before := llmhttp.ReadStats().ContentTruncated
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Parisparisparisparisparisparisparis"}})
			require.NoError(t, err)
			require.NoError(t, clientTr.Flush(ctx))
			tools := clientRec.SpansOfType(agenttrace.TypeTool)
			require.Len(t, tools, 3)
			var out struct{ Output any }
			require.NoError(t, json.Unmarshal(tools[2].Result, &out))
			assert.IsType(t, "", out.Output, "a cut value is kept as a string")
			assert.Greater(t, llmhttp.ReadStats().ContentTruncated, before)
		})
	}
}

// idPropagator is a TextMapPropagator of the test's own: the trace and span
// IDs in one "x-trace" key.
type idPropagator struct{}

func (idPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c.Set("x-trace", sc.TraceID().String()+"/"+sc.SpanID().String())
	}
}

func (idPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	tid, sid, ok := strings.Cut(c.Get("x-trace"), "/")
	if !ok {
		return ctx
	}
	t, err1 := trace.TraceIDFromHex(tid)
	s, err2 := trace.SpanIDFromHex(sid)
	if err1 != nil || err2 != nil {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: t, SpanID: s, Remote: true}))
}

func (idPropagator) Fields() []string { return []string{"x-trace"} }

// WithPropagator replaces W3C trace context in params._meta on both sides.
func TestWithPropagator(t *testing.T) {
	ctx := context.Background()
	clientTr, clientRec := agenttracetest.New(t)
	serverTr, serverRec := agenttracetest.New(t)
	seen := &seenMeta{}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	client.AddSendingMiddleware(mcptrace.ClientMiddleware(clientTr, mcptrace.WithPropagator(idPropagator{})))
	server := newServerWith(serverTr, seen, []mcptrace.Option{mcptrace.WithPropagator(idPropagator{})})
	cs := connect(t, ctx, server, client)
	ctx, inst := clientTr.StartInstance(ctx)
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather", Arguments: cityArgs{City: "Oslo"}})
	require.NoError(t, err)
	inst.End()
	require.NoError(t, clientTr.Flush(ctx))
	require.NoError(t, serverTr.Flush(ctx))

	tool := clientRec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, tool, 1)
	require.Len(t, seen.meta, 1)
	assert.NotContains(t, seen.meta[0], "traceparent")
	assert.Equal(t, otelbridge.TraceID(inst.ID()).String()+"/"+otelbridge.SpanID(tool[0].ID).String(), seen.meta[0]["x-trace"])
	sinsts := serverRec.Instances()
	require.Len(t, sinsts, 1)
	require.NotNil(t, sinsts[0].TraceParent, "the server read the context with the same propagator")
	assert.Equal(t, otelbridge.SpanID(tool[0].ID), trace.SpanID(sinsts[0].TraceParent.SpanID))
	assert.Equal(t, otelbridge.TraceID(inst.ID()), trace.TraceID(sinsts[0].TraceParent.TraceID))
}
