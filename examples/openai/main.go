// Command openai traces a small tool-using agent built on openai-go with
// one line of instrumentation (openaitrace.WithTracing). Without
// OPENAI_API_KEY it talks to a fake provider on loopback, so it runs with
// no account and no network; with the key set it calls the real API
// (OPENAI_MODEL, default gpt-4o-mini).
//
//	go run ./examples/openai
//	OPENAI_API_KEY=sk-... go run ./examples/openai
//
// The agent asks for the weather, runs the tool the model asks for, and
// streams the answer. The trace (agent, llm, tool, llm spans with usage,
// cost and time to first token) goes to standard output unless
// AGENTTRACE_EXPORTER says otherwise.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/autoexport"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
	openaitrace "github.com/agenttrace/agenttrace/instrument/openai"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openai example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	exporters, desc, err := autoexport.FromEnv(autoexport.WithStdout(w))
	if err != nil {
		return err
	}
	tracer, err := agenttrace.New(agenttrace.WithAgent("weather-agent", "1.0.0"), agenttrace.WithExporter(exporters...))
	if err != nil {
		return err
	}

	opts := []option.RequestOption{
		// The one line: every call of this client is traced.
		openaitrace.WithTracing(tracer, llmhttp.WithIncludeUsage()),
	}
	model := shared.ChatModel(os.Getenv("OPENAI_MODEL"))
	if model == "" {
		model = shared.ChatModelGPT4oMini
	}
	if os.Getenv("OPENAI_API_KEY") == "" {
		url, stop, err := fakeProvider()
		if err != nil {
			return err
		}
		defer stop()
		opts = append(opts, option.WithBaseURL(url), option.WithAPIKey("fake-key"))
		fmt.Fprintf(w, "openai example: no OPENAI_API_KEY, using a fake provider at %s; tracing to %s\n\n", url, desc)
	} else {
		fmt.Fprintf(w, "openai example: calling the OpenAI API with %s; tracing to %s\n\n", model, desc)
	}
	client := openai.NewClient(opts...)

	ctx, inst := tracer.StartInstance(ctx, agenttrace.WithUserID("user-1"))
	answer, runErr := agent(ctx, tracer, client, model, "What should I wear in Paris today?")
	if runErr != nil {
		inst.Fail(runErr)
	} else {
		inst.End()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tracer.Shutdown(sctx); err != nil {
		return err
	}
	sum := inst.Summary()
	fmt.Fprintf(w, "\nanswer:  %s\n", answer)
	fmt.Fprintf(w, "summary: %d LLM calls, %d spans, ", sum.LLMCalls, sum.Spans.Total)
	if sum.Usage != nil {
		fmt.Fprintf(w, "%d tokens (%d prompt, %d completion)", sum.Usage.TotalTokens, sum.Usage.PromptTokens, sum.Usage.CompletionTokens)
	}
	if sum.Cost != nil {
		fmt.Fprintf(w, ", cost $%.6f", sum.Cost.Total)
	}
	fmt.Fprintf(w, ", time to first token %s\n", sum.TimeToFirstToken.Round(time.Microsecond))
	return runErr
}

// agent asks the model, runs the weather tool it asks for, and streams the
// answer.
func agent(ctx context.Context, tracer *agenttrace.Tracer, client openai.Client, model shared.ChatModel, question string) (string, error) {
	ctx, span := tracer.Start(ctx, agenttrace.TypeAgent, agenttrace.AgentInput{Name: "weather-agent", Input: question})
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(question)},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Description: openai.String("Current weather in a city"),
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		})},
	}
	first, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		span.Fail(err)
		return "", err
	}
	msg := first.Choices[0].Message
	params.Messages = append(params.Messages, msg.ToParam())
	for _, call := range msg.ToolCalls {
		_, tool := tracer.Start(ctx, agenttrace.TypeTool, agenttrace.ToolInput{Name: call.Function.Name, CallID: call.ID, Arguments: json.RawMessage(call.Function.Arguments)})
		out := weather(call.Function.Arguments)
		tool.SetResult(agenttrace.ToolOutput{Output: out})
		tool.End()
		params.Messages = append(params.Messages, openai.ToolMessage(out, call.ID))
	}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var answer strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			answer.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		span.Fail(err)
		return "", err
	}
	_ = stream.Close()
	span.SetResult(agenttrace.AgentOutput{Output: answer.String(), Turns: 2})
	span.End()
	return answer.String(), nil
}

func weather(args string) string {
	var a struct{ City string }
	_ = json.Unmarshal([]byte(args), &a)
	return fmt.Sprintf(`{"city":%q,"temp_c":14,"sky":"light rain"}`, a.City)
}

// fakeProvider serves the OpenAI Chat Completions API on loopback: a tool
// call for the first turn, a streamed answer once a tool result is in.
func fakeProvider() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(fakeChat), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

func fakeChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role string `json:"role"`
		} `json:"messages"`
	}
	if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`)
		return
	}
	if len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role != "tool" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"%s-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":64,"completion_tokens":15,"total_tokens":79}}`, req.Model)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher, _ := w.(http.Flusher)
	chunk := func(delta, finish string) {
		fin := "null"
		if finish != "" {
			fin = `"` + finish + `"`
		}
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"%s-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":%s}],\"usage\":null}\n\n", req.Model, delta, fin)
		if flusher != nil {
			flusher.Flush()
		}
	}
	for _, word := range strings.SplitAfter("Take a raincoat: it is 14°C with light rain in Paris.", " ") {
		chunk(word, "")
		time.Sleep(2 * time.Millisecond)
	}
	chunk("", "stop")
	fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"%s-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":101,\"completion_tokens\":14,\"total_tokens\":115,\"prompt_tokens_details\":{\"cached_tokens\":64}}}\n\ndata: [DONE]\n\n", req.Model)
}
