package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// travelRun records a finished run: an agent span around a planning LLM
// call that asks for two tools, a weather tool that fails, a search tool
// with an over-cap payload (truncated), and a streamed answer. It returns
// the run's instance and the failed span.
func travelRun(ctx context.Context, tr *agenttrace.Tracer, user, group string) (*agenttrace.Instance, *agenttrace.Span) {
	ctx, inst := tr.StartInstance(ctx, agenttrace.WithUserID(user), agenttrace.WithGroupID(group), agenttrace.WithChannel("web"),
		agenttrace.WithSessionID("sess-"+user))
	// The "instance" object of a root span's payload is where the API
	// takes a run's name, user, group and channel from (prefactorapi's
	// rollup).
	actx, agent := tr.Start(ctx, agenttrace.TypeAgent, map[string]any{"agent_name": "travel-assistant", "model": "gpt-4o",
		"input":    "Plan a rainy-day afternoon in Lisbon for two.",
		"instance": map[string]string{"name": "Lisbon rainy day " + user, "user_id": user, "group_id": group, "channel": "web"}})
	calls := []agenttrace.ToolCall{
		{ID: "call_weather", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Lisbon"}`)},
		{ID: "call_places", Name: "search_places", Arguments: json.RawMessage(`{"city":"Lisbon","query":"indoor"}`)},
	}
	question := agenttrace.Message{Role: "user", Content: "Plan a rainy-day afternoon in Lisbon for two."}
	_, plan := tr.Start(actx, agenttrace.TypeLLM, agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o",
		System: "You are a travel assistant.", Messages: []agenttrace.Message{question}})
	plan.SetResult(agenttrace.LLMResponse{Model: "gpt-4o", ToolCalls: calls, FinishReason: "tool_calls",
		Usage: &agenttrace.Usage{PromptTokens: 800, CompletionTokens: 34},
		Cost:  &agenttrace.Cost{Prompt: 0.002, Completion: 0.00034, Currency: "USD"}})
	plan.End()

	_, weather := tr.Start(actx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "get_weather", Arguments: calls[0].Arguments})
	weather.Fail(errors.New("weather service timed out after 5s"))

	_, places := tr.Start(actx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "search_places", Arguments: calls[1].Arguments})
	places.SetResult(map[string]any{"places": strings.Repeat("Museu Nacional do Azulejo; ", 4000)})
	places.End()

	_, answer := tr.Start(actx, agenttrace.TypeLLM, agenttrace.LLMRequest{Provider: "openai", Model: "gpt-4o", Stream: true,
		Messages: []agenttrace.Message{question, {Role: "assistant", ToolCalls: calls},
			{Role: "tool", ToolCallID: "call_weather", Content: "error: timed out"},
			{Role: "tool", ToolCallID: "call_places", Content: "Museu Nacional do Azulejo"}}})
	time.Sleep(2 * time.Millisecond)
	answer.MarkFirstToken()
	// The result as a map, as an SDK without LLMResponse sends it: the
	// API's rollup reads ttft_ms from it.
	answer.SetResult(map[string]any{"model": "gpt-4o", "text": "Visit the Azulejo museum, then a café in Chiado.",
		"finish_reason": "stop", "ttft_ms": 412,
		"token_usage": map[string]int{"prompt_tokens": 366, "completion_tokens": 34, "total_tokens": 400},
		"cost":        map[string]any{"prompt": 0.000915, "completion": 0.00034, "total": 0.001255, "currency": "USD"}})
	answer.End()
	agent.End()
	inst.End()
	return inst, weather
}

// TestScenarioLands checks the run the browser tests read lands as
// recorded: the rollups the runs list shows and every span.
func TestScenarioLands(t *testing.T) {
	ts := newTestServer(t)
	tr := ts.tracer(t, "travel-agent", "1.0.0", agenttrace.WithPayloadLimit(16<<10))
	travelRun(context.Background(), tr, "user-1", "team-a")
	flush(t, tr)
	id := ts.runID(t, "Lisbon rainy day user-1")
	d, ok, err := getRun(context.Background(), ts.API, id)
	require.NoError(t, err)
	require.True(t, ok)
	r := d.Run
	assert.Equal(t, "Lisbon rainy day user-1", r.Name)
	assert.Equal(t, "travel-agent", r.AgentName)
	assert.Equal(t, "1.0.0", r.VersionName)
	assert.Equal(t, 1, r.AgentVersion)
	assert.Equal(t, "complete", r.Status)
	assert.Equal(t, []string{"user-1", "team-a", "web"}, []string{r.UserIdentifier, r.GroupIdentifier, r.Channel})
	assert.Equal(t, RunUsage{PromptTokens: 1166, CompletionTokens: 68, TotalTokens: 1234}, r.Usage)
	assert.InDelta(t, 0.003595, r.Costs.Total, 1e-9)
	assert.Equal(t, "USD", r.Costs.Currency)
	require.NotNil(t, r.TTFTMillis)
	assert.EqualValues(t, 412, *r.TTFTMillis)
	assert.EqualValues(t, 5, r.SpanCounts.Total)
	assert.EqualValues(t, 1, r.SpanCounts.Failed)
	require.Len(t, d.Spans, 5)
	byID := map[string]string{}
	truncated := 0
	for _, s := range d.Spans {
		byID[s.ID] = s.Status
		if strings.Contains(string(s.ResultPayload), `"_agenttrace":{"truncated":true`) {
			truncated++
		}
	}
	assert.Equal(t, "failed", byID[ts.failedSpan(t, id)])
	assert.Equal(t, 1, truncated, "the search result is over the payload cap")
}
