package einotrace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	einotrace "github.com/agenttrace/agenttrace/instrument/eino"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	"github.com/cloudwego/eino/callbacks"
	"github.com/cloudwego/eino/components/model"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeModel is a tool-calling chat model that reports its own callbacks,
// as eino-ext's provider models do: asked without a tool result it calls
// both tools, given the results it answers.
type fakeModel struct {
	tools []*schema.ToolInfo
	fail  error
}

func (m *fakeModel) GetType() string          { return "Fake" }
func (m *fakeModel) IsCallbacksEnabled() bool { return true }

func (m *fakeModel) WithTools(tools []*schema.ToolInfo) (model.ToolCallingChatModel, error) {
	return &fakeModel{tools: tools, fail: m.fail}, nil
}

func (m *fakeModel) input(in []*schema.Message) *model.CallbackInput {
	return &model.CallbackInput{Messages: in, Tools: m.tools, Config: &model.Config{Model: "fake-1", Temperature: 0.5, MaxTokens: 256}}
}

func answered(in []*schema.Message) bool { return in[len(in)-1].Role == schema.Tool }

func usage(in []*schema.Message) *model.TokenUsage {
	if answered(in) {
		return &model.TokenUsage{PromptTokens: 200, CompletionTokens: 8, TotalTokens: 208, PromptTokenDetails: model.PromptTokenDetails{CachedTokens: 150}}
	}
	return &model.TokenUsage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, CompletionTokensDetails: model.CompletionTokensDetails{ReasoningTokens: 5}}
}

func toolCall(i int, id, name, args string) schema.ToolCall {
	return schema.ToolCall{Index: &i, ID: id, Type: "function", Function: schema.FunctionCall{Name: name, Arguments: args}}
}

func (m *fakeModel) Generate(ctx context.Context, in []*schema.Message, _ ...model.Option) (*schema.Message, error) {
	ctx = callbacks.OnStart(ctx, m.input(in))
	if m.fail != nil {
		callbacks.OnError(ctx, m.fail)
		return nil, m.fail
	}
	msg := &schema.Message{Role: schema.Assistant, Content: "Sunny, 21:00 in Paris.", ResponseMeta: &schema.ResponseMeta{FinishReason: "stop"}}
	if !answered(in) {
		msg = &schema.Message{Role: schema.Assistant, ResponseMeta: &schema.ResponseMeta{FinishReason: "tool_calls"}, ToolCalls: []schema.ToolCall{
			toolCall(0, "call_w", "weather", `{"city":"Paris"}`), toolCall(1, "call_c", "clock", `{"city":"Paris"}`),
		}}
	}
	callbacks.OnEnd(ctx, &model.CallbackOutput{Message: msg, Config: m.input(in).Config, TokenUsage: usage(in)})
	return msg, nil
}

func (m *fakeModel) Stream(ctx context.Context, in []*schema.Message, _ ...model.Option) (*schema.StreamReader[*schema.Message], error) {
	ctx = callbacks.OnStart(ctx, m.input(in))
	var chunks []*schema.Message
	if answered(in) {
		chunks = []*schema.Message{
			{Role: schema.Assistant}, // a role-only preamble: not a first token
			{Role: schema.Assistant, Content: "Sunny, "},
			{Role: schema.Assistant, Content: "21:00 in Paris."},
			{Role: schema.Assistant, ResponseMeta: &schema.ResponseMeta{FinishReason: "stop"}},
		}
	} else {
		chunks = []*schema.Message{
			{Role: schema.Assistant, ToolCalls: []schema.ToolCall{toolCall(0, "call_w", "weather", `{"city":`)}},
			{Role: schema.Assistant, ToolCalls: []schema.ToolCall{toolCall(0, "", "", `"Paris"}`)}},
			{Role: schema.Assistant, ToolCalls: []schema.ToolCall{toolCall(1, "call_c", "clock", `{"city":"Paris"}`)}},
			{Role: schema.Assistant, ResponseMeta: &schema.ResponseMeta{FinishReason: "tool_calls"}},
		}
	}
	sr, sw := schema.Pipe[*model.CallbackOutput](1)
	go func() {
		defer sw.Close()
		for i, c := range chunks {
			out := &model.CallbackOutput{Message: c}
			if i == len(chunks)-1 {
				out.TokenUsage = usage(in)
			}
			if m.fail != nil && i == 2 {
				sw.Send(nil, m.fail)
				return
			}
			if sw.Send(out, nil) {
				return
			}
		}
	}()
	_, nsr := callbacks.OnEndWithStreamOutput(ctx, sr)
	return schema.StreamReaderWithConvert(nsr, func(o *model.CallbackOutput) (*schema.Message, error) { return o.Message, nil }), nil
}

// fakeTool answers with a fixed JSON object; inside, it starts a span of
// the user's own, which must nest under the tool's span.
type fakeTool struct {
	name, out string
	tracer    *agenttrace.Tracer
}

func (t fakeTool) Info(context.Context) (*schema.ToolInfo, error) {
	return &schema.ToolInfo{Name: t.name, Desc: "the " + t.name + " of a city", ParamsOneOf: schema.NewParamsOneOfByParams(
		map[string]*schema.ParameterInfo{"city": {Type: schema.String, Required: true}})}, nil
}

func (t fakeTool) InvokableRun(ctx context.Context, args string, _ ...tool.Option) (string, error) {
	_, span := t.tracer.Start(ctx, agenttrace.TypeChain, agenttrace.ChainInput{Name: "lookup"}, agenttrace.WithName("lookup "+t.name))
	defer span.End()
	if !strings.Contains(args, "Paris") {
		return "", errors.New("no city")
	}
	return t.out, nil
}

func newAgent(t *testing.T, tr *agenttrace.Tracer, m *fakeModel) *react.Agent {
	t.Helper()
	a, err := react.NewAgent(context.Background(), &react.AgentConfig{
		ToolCallingModel: m,
		ToolsConfig: compose.ToolsNodeConfig{ExecuteSequentially: true, Tools: []tool.BaseTool{
			fakeTool{name: "weather", out: `{"sky":"sunny"}`, tracer: tr},
			fakeTool{name: "clock", out: `{"time":"21:00"}`, tracer: tr},
		}},
	})
	require.NoError(t, err)
	return a
}

const wantTree = "agent ReActAgent complete\n" +
	"  llm ChatModel complete\n" +
	"  chain Tools complete\n" +
	"    tool weather complete\n" +
	"      chain lookup weather complete\n" +
	"    tool clock complete\n" +
	"      chain lookup clock complete\n" +
	"  llm ChatModel complete\n"

func TestReActAgent(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "generate"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
			a := newAgent(t, tr, &fakeModel{})
			ctx, inst := tr.StartInstance(context.Background())
			opt := agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr, einotrace.WithContent(true))))
			in := []*schema.Message{schema.SystemMessage("You are a weather bot."), schema.UserMessage("Weather and time in Paris?")}
			var out *schema.Message
			if stream {
				sr, err := a.Stream(ctx, in, opt)
				require.NoError(t, err)
				out, err = schema.ConcatMessageStream(sr)
				require.NoError(t, err)
			} else {
				var err error
				out, err = a.Generate(ctx, in, opt)
				require.NoError(t, err)
			}
			assert.Equal(t, "Sunny, 21:00 in Paris.", out.Content)
			// A streamed span ends when eino's copy of the stream does, on
			// the handler's goroutine: wait for the whole tree.
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, rec.WaitFor(wctx, func(r *agenttracetest.Recorder) bool {
				return len(r.FindSpans(func(d agenttrace.SpanData) bool { return d.Status.Finished() })) == 8
			}))
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))
			assert.Equal(t, wantTree, rec.Tree(inst.ID()))

			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 2)
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(llms[0].Payload, &req))
			assert.Equal(t, "chat", req.Operation)
			assert.Equal(t, "fake", req.Provider)
			assert.Equal(t, "fake-1", req.Model)
			assert.Equal(t, "You are a weather bot.", req.System)
			assert.Equal(t, []agenttrace.Message{{Role: "user", Content: "Weather and time in Paris?"}}, req.Messages)
			require.Len(t, req.Tools, 2)
			assert.Equal(t, "weather", req.Tools[0].Name)
			assert.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, string(req.Tools[0].Parameters))
			require.NotNil(t, req.Settings)
			assert.Equal(t, 0.5, *req.Settings.Temperature)
			assert.Equal(t, int64(256), *req.Settings.MaxTokens)

			var first, second agenttrace.LLMResponse
			require.NoError(t, json.Unmarshal(llms[0].Result, &first))
			require.NoError(t, json.Unmarshal(llms[1].Result, &second))
			assert.Equal(t, "tool_calls", first.FinishReason)
			require.Len(t, first.ToolCalls, 2, "stream deltas reassembled")
			assert.Equal(t, "call_w", first.ToolCalls[0].ID)
			assert.Equal(t, "weather", first.ToolCalls[0].Name)
			assert.JSONEq(t, `{"city":"Paris"}`, string(first.ToolCalls[0].Arguments))
			assert.Equal(t, "clock", first.ToolCalls[1].Name)
			assert.Equal(t, "stop", second.FinishReason)
			assert.Equal(t, "Sunny, 21:00 in Paris.", second.Text)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, Details: map[string]int64{"reasoning": 5}}, *llms[0].Usage)
			assert.Equal(t, agenttrace.Usage{PromptTokens: 200, CompletionTokens: 8, TotalTokens: 208, Details: map[string]int64{"cache_read": 150}}, *llms[1].Usage)
			for _, l := range llms {
				if stream {
					assert.False(t, l.FirstTokenAt.IsZero(), "first token of a stream")
				} else {
					assert.True(t, l.FirstTokenAt.IsZero())
				}
			}

			tools := rec.SpansOfType(agenttrace.TypeTool)
			require.Len(t, tools, 2)
			var tin agenttrace.ToolInput
			require.NoError(t, json.Unmarshal(tools[0].Payload, &tin))
			assert.Equal(t, "weather", tin.Name)
			assert.Equal(t, "call_w", tin.CallID)
			assert.JSONEq(t, `{"tool_name":"weather","call_id":"call_w","arguments":{"city":"Paris"}}`, string(tools[0].Payload))
			assert.JSONEq(t, `{"output":{"sky":"sunny"}}`, string(tools[0].Result))

			sum := inst.Summary()
			require.NotNil(t, sum.Usage)
			assert.Equal(t, int64(328), sum.Usage.TotalTokens)
			assert.Equal(t, int64(2), sum.LLMCalls)
		})
	}
}

// Without content capture, spans keep the shape of the run but no text,
// arguments or results: metadata (the default) keeps the messages' roles
// and text sizes, tool call names and ids; off keeps no messages.
func TestWithoutContent(t *testing.T) {
	for _, mode := range []llmhttp.CaptureMode{llmhttp.CaptureDefault, llmhttp.CaptureMetadata, llmhttp.CaptureOff} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Setenv(llmhttp.EnvCaptureContent, "")
			tr, rec := agenttracetest.New(t)
			a := newAgent(t, tr, &fakeModel{})
			ctx, inst := tr.StartInstance(context.Background())
			_, err := a.Generate(ctx, []*schema.Message{schema.SystemMessage("You are a weather bot."), schema.UserMessage("Weather in Paris?")},
				agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr, einotrace.WithCapture(mode)))))
			require.NoError(t, err)
			inst.End()
			require.NoError(t, tr.Flush(context.Background()))
			assert.Equal(t, wantTree, rec.Tree(inst.ID()))
			for _, s := range rec.Spans() {
				for _, secret := range []string{"Paris", "weather bot", "sunny", "Sunny", "of a city"} {
					assert.NotContains(t, string(s.Payload), secret, s.Name)
					assert.NotContains(t, string(s.Result), secret, s.Name)
				}
			}
			llms := rec.SpansOfType(agenttrace.TypeLLM)
			require.Len(t, llms, 2)
			assert.JSONEq(t, `[{"id":"call_w","name":"weather"},{"id":"call_c","name":"clock"}]`, jsonField(t, llms[0].Result, "tool_calls"))
			assert.JSONEq(t, `[{"name":"weather"},{"name":"clock"}]`, jsonField(t, llms[0].Payload, "tools"), "tool names only")
			assert.NotNil(t, llms[1].Usage)
			var req agenttrace.LLMRequest
			require.NoError(t, json.Unmarshal(llms[1].Payload, &req))
			var res agenttrace.LLMResponse
			require.NoError(t, json.Unmarshal(llms[1].Result, &res))
			if mode == llmhttp.CaptureOff {
				assert.Empty(t, req.Messages)
				assert.Empty(t, res.Messages)
				return
			}
			require.Len(t, req.Messages, 5, "system, user, the assistant's tool calls, two tool results")
			assert.Equal(t, agenttrace.Message{Role: "system", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 22}}}, req.Messages[0])
			assert.Equal(t, agenttrace.Message{Role: "user", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 17}}}, req.Messages[1])
			assert.Equal(t, []agenttrace.ToolCall{{ID: "call_w", Name: "weather"}, {ID: "call_c", Name: "clock"}}, req.Messages[2].ToolCalls)
			assert.Equal(t, "call_w", req.Messages[3].ToolCallID)
			assert.Equal(t, []agenttrace.Message{{Role: "assistant", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartText, Size: 22}}}}, res.Messages)
		})
	}
}

// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns content on when
// no mode is set; an explicit mode wins.
func TestCaptureFromEnv(t *testing.T) {
	t.Setenv(llmhttp.EnvCaptureContent, "SPAN_ONLY")
	for _, opts := range [][]einotrace.Option{nil, {einotrace.WithCapture(llmhttp.CaptureOff)}} {
		tr, rec := agenttracetest.New(t)
		a := newAgent(t, tr, &fakeModel{})
		_, err := a.Generate(context.Background(), []*schema.Message{schema.UserMessage("Weather in Paris?")},
			agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr, opts...))))
		require.NoError(t, err)
		require.NoError(t, tr.Flush(context.Background()))
		llms := rec.SpansOfType(agenttrace.TypeLLM)
		require.Len(t, llms, 2)
		if opts == nil {
			assert.Contains(t, string(llms[0].Payload), "Weather in Paris?")
			assert.Contains(t, string(llms[1].Result), "Sunny, 21:00 in Paris.")
		} else {
			assert.NotContains(t, string(llms[0].Payload), "Paris")
		}
	}
}

// The content of a span is capped (WithMaxContentBytes): what is cut is
// marked and counted, a cut JSON value is kept as a string; the tracer's
// Redactor sees what is captured.
func TestContentCapAndRedactor(t *testing.T) {
	redact := func(_ string, _ agenttrace.PayloadField, p []byte) []byte {
		return bytes.ReplaceAll(p, []byte("Paris"), []byte("[city]"))
	}
	tr, rec := agenttracetest.New(t, agenttrace.WithRedactor(redact))
	a := newAgent(t, tr, &fakeModel{})
	before := llmhttp.ReadStats().ContentTruncated
	_, err := a.Generate(context.Background(), []*schema.Message{schema.SystemMessage("You are a weather bot."), schema.UserMessage("Weather in Paris?")},
		agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr, einotrace.WithContent(true), einotrace.WithMaxContentBytes(30)))))
	require.NoError(t, err)
	require.NoError(t, tr.Flush(context.Background()))
	for _, s := range rec.Spans() {
		assert.NotContains(t, string(s.Payload)+string(s.Result), "Paris", "the redactor saw %s", s.Name)
	}
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 2)
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(llms[0].Payload, &req))
	assert.Equal(t, "You are a weather bot.", req.System, "22 bytes of 30")
	assert.Equal(t, []agenttrace.Message{{Role: "user", Content: "Weather "}}, req.Messages, "the rest of the budget")
	assert.Equal(t, true, req.Metadata["content_truncated"])
	assert.Empty(t, req.Tools[0].Description, "nothing left for the tools")
	tools := rec.SpansOfType(agenttrace.TypeTool)
	require.Len(t, tools, 2)
	assert.JSONEq(t, `{"tool_name":"weather","call_id":"call_w","arguments":{"city":"[city]"}}`, string(tools[0].Payload), "redacted, within its own budget")
	assert.Greater(t, llmhttp.ReadStats().ContentTruncated, before)
}

func TestModelErrors(t *testing.T) {
	boom := errors.New("upstream overloaded")
	for _, stream := range []bool{false, true} {
		tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
		a := newAgent(t, tr, &fakeModel{fail: boom})
		ctx, inst := tr.StartInstance(context.Background())
		opt := agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr)))
		in := []*schema.Message{schema.UserMessage("Weather in Paris?")}
		var err error
		if stream {
			var sr *schema.StreamReader[*schema.Message]
			sr, err = a.Stream(ctx, in, opt)
			if err == nil {
				for {
					if _, err = sr.Recv(); err != nil {
						break
					}
				}
				sr.Close()
			}
		} else {
			_, err = a.Generate(ctx, in, opt)
		}
		require.ErrorContains(t, err, "upstream overloaded")
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, rec.WaitFor(wctx, func(r *agenttracetest.Recorder) bool {
			return len(r.FindSpans(func(d agenttrace.SpanData) bool { return d.Status.Finished() })) == 2
		}))
		cancel()
		inst.End()
		require.NoError(t, tr.Flush(context.Background()))
		assert.Equal(t, "agent ReActAgent failed\n  llm ChatModel failed\n", rec.Tree(inst.ID()), "stream=%v", stream)
		llm := rec.SpansOfType(agenttrace.TypeLLM)[0]
		assert.Contains(t, llm.Error.Message, "upstream overloaded")
	}
}

// A handler registered globally traces components run outside any graph,
// each a root span of its own.
func TestStandaloneComponent(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	ctx, inst := tr.StartInstance(context.Background())
	ctx = callbacks.InitCallbacks(ctx, &callbacks.RunInfo{Name: "bare", Type: "Fake", Component: "ChatModel"}, einotrace.NewHandler(tr))
	_, err := (&fakeModel{}).Generate(ctx, []*schema.Message{schema.UserMessage("hi")})
	require.NoError(t, err)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "llm bare complete\n", rec.Tree(inst.ID()))
}

func jsonField(t *testing.T, payload []byte, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(payload, &m))
	return string(m[field])
}

// plainModel does not report its callbacks: the graph node reports them
// with the model's own input and output (messages), and the usage comes
// from the message's ResponseMeta.
type plainModel struct{ fakeModel }

func (m *plainModel) IsCallbacksEnabled() bool { return false }

func (m *plainModel) WithTools(tools []*schema.ToolInfo) (model.ToolCallingChatModel, error) {
	return &plainModel{fakeModel{tools: tools}}, nil
}

func (m *plainModel) Generate(_ context.Context, in []*schema.Message, _ ...model.Option) (*schema.Message, error) {
	u := usage(in)
	meta := &schema.ResponseMeta{FinishReason: "stop", Usage: &schema.TokenUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}}
	if !answered(in) {
		meta.FinishReason = "tool_calls"
		return &schema.Message{Role: schema.Assistant, ResponseMeta: meta, ToolCalls: []schema.ToolCall{
			toolCall(0, "call_w", "weather", `{"city":"Paris"}`), toolCall(1, "call_c", "clock", `{"city":"Paris"}`),
		}}, nil
	}
	return &schema.Message{Role: schema.Assistant, Content: "Sunny, 21:00 in Paris.", ResponseMeta: meta}, nil
}

func TestGraphInjectedCallbacks(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	a, err := react.NewAgent(context.Background(), &react.AgentConfig{
		ToolCallingModel: &plainModel{},
		ToolsConfig: compose.ToolsNodeConfig{ExecuteSequentially: true, Tools: []tool.BaseTool{
			fakeTool{name: "weather", out: `{"sky":"sunny"}`, tracer: tr},
			fakeTool{name: "clock", out: `{"time":"21:00"}`, tracer: tr},
		}},
	})
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	out, err := a.Generate(ctx, []*schema.Message{schema.UserMessage("Weather in Paris?")},
		agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr))))
	require.NoError(t, err)
	assert.Equal(t, "Sunny, 21:00 in Paris.", out.Content)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, wantTree, rec.Tree(inst.ID()))
	llms := rec.SpansOfType(agenttrace.TypeLLM)
	require.Len(t, llms, 2)
	assert.Equal(t, agenttrace.Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120}, *llms[0].Usage)
	assert.JSONEq(t, `"tool_calls"`, jsonField(t, llms[0].Result, "finish_reason"))
}

// A streamed run whose chunks are text records the joined text in the
// result shape of each span's type: the outermost chain is the agent
// (AgentOutput), the streaming lambda inside it a chain (ChainOutput).
func TestStreamedTextOutputs(t *testing.T) {
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	words := compose.StreamableLambda(func(_ context.Context, in string) (*schema.StreamReader[string], error) {
		return schema.StreamReaderFromArray([]string{"Sunny ", "in ", in, "."}), nil
	})
	chain := compose.NewChain[string, string]()
	chain.AppendLambda(words, compose.WithNodeName("words"))
	r, err := chain.Compile(context.Background())
	require.NoError(t, err)
	ctx, inst := tr.StartInstance(context.Background())
	sr, err := r.Stream(ctx, "Paris", compose.WithCallbacks(einotrace.NewHandler(tr, einotrace.WithContent(true))))
	require.NoError(t, err)
	var got strings.Builder
	for {
		s, err := sr.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got.WriteString(s)
	}
	sr.Close()
	assert.Equal(t, "Sunny in Paris.", got.String())
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rec.WaitFor(wctx, func(r *agenttracetest.Recorder) bool {
		return len(r.FindSpans(func(d agenttrace.SpanData) bool { return d.Status.Finished() })) == 2
	}))
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))

	agents := rec.SpansOfType(agenttrace.TypeAgent)
	require.Len(t, agents, 1)
	assert.Equal(t, agenttrace.StatusComplete, agents[0].Status)
	var ao agenttrace.AgentOutput
	require.NoError(t, json.Unmarshal(agents[0].Result, &ao), string(agents[0].Result))
	assert.Equal(t, "Sunny in Paris.", ao.Output)

	chains := rec.SpansOfType(agenttrace.TypeChain)
	require.Len(t, chains, 1)
	assert.Equal(t, agents[0].ID, chains[0].ParentID)
	var co agenttrace.ChainOutput
	require.NoError(t, json.Unmarshal(chains[0].Result, &co), string(chains[0].Result))
	assert.Equal(t, "Sunny in Paris.", co.Outputs)
}

// WithSpanTypes replaces the mapping: a component it maps to "" is skipped
// and its children nest under its nearest traced ancestor.
func TestWithSpanTypes(t *testing.T) {
	tr, rec := agenttracetest.New(t, agenttrace.WithFlushInterval(5*time.Millisecond))
	a := newAgent(t, tr, &fakeModel{})
	var seen sync.Map
	types := einotrace.WithSpanTypes(func(info *callbacks.RunInfo, nested bool) string {
		seen.Store(string(info.Component), true)
		if info.Component == compose.ComponentOfToolsNode {
			return ""
		}
		return einotrace.DefaultSpanType(info, nested)
	})
	ctx, inst := tr.StartInstance(context.Background())
	opt := agent.WithComposeOptions(compose.WithCallbacks(einotrace.NewHandler(tr, types)))
	_, err := a.Generate(ctx, []*schema.Message{schema.UserMessage("Weather and time in Paris?")}, opt)
	require.NoError(t, err)
	inst.End()
	require.NoError(t, tr.Flush(context.Background()))
	assert.Equal(t, "agent ReActAgent complete\n"+
		"  llm ChatModel complete\n"+
		"  tool weather complete\n"+
		"    chain lookup weather complete\n"+
		"  tool clock complete\n"+
		"    chain lookup clock complete\n"+
		"  llm ChatModel complete\n", rec.Tree(inst.ID()))
	_, asked := seen.Load(string(compose.ComponentOfToolsNode))
	assert.True(t, asked, "the mapping was asked about the tools node")
}
