package agenttrace_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

func TestInstanceRollsUpUsageDetails(t *testing.T) {
	tr, _ := newTracer(t)
	ctx, inst := tr.StartInstance(context.Background())
	_, a := tr.Start(ctx, "llm", nil)
	a.SetUsage(agenttrace.Usage{PromptTokens: 100, CompletionTokens: 10, Details: map[string]int64{agenttrace.UsageCacheRead: 80, agenttrace.UsageReasoning: 4}})
	a.End()
	_, b := tr.Start(ctx, "llm", nil)
	b.SetResult(agenttrace.LLMResponse{Usage: &agenttrace.Usage{PromptTokens: 50, CompletionTokens: 5, Details: map[string]int64{agenttrace.UsageCacheRead: 20, agenttrace.UsageCacheWrite: 30}}})
	b.End()
	s := inst.Summary()
	require.Equal(t, &agenttrace.Usage{PromptTokens: 150, CompletionTokens: 15, TotalTokens: 165, Details: map[string]int64{
		agenttrace.UsageCacheRead: 100, agenttrace.UsageReasoning: 4, agenttrace.UsageCacheWrite: 30,
	}}, s.Usage)
	s.Usage.Details["x"] = 1 // the summary's map is a copy
	require.NotContains(t, inst.Summary().Usage.Details, "x")
	inst.End()
}

func TestMessagePartsEncode(t *testing.T) {
	tr, rec := newTracer(t)
	_, s := tr.Start(context.Background(), "llm", agenttrace.LLMRequest{
		Messages: []agenttrace.Message{{Role: "user", Content: "look", Parts: []agenttrace.ContentPart{
			{Type: agenttrace.PartImage, MIMEType: "image/png", Size: 1024},
			{Type: agenttrace.PartImage, URL: "https://example.com/a.png"},
		}}},
		Settings: &agenttrace.LLMSettings{ResponseFormat: "json_object", ToolChoice: "auto", ReasoningEffort: "low"},
	})
	s.SetResult(agenttrace.LLMResponse{ServiceTier: "flex", Messages: []agenttrace.Message{{Role: "assistant", Parts: []agenttrace.ContentPart{{Type: agenttrace.PartRefusal, Text: "no"}}}}})
	s.End()
	require.NoError(t, tr.Flush(context.Background()))
	d := rec.SpansOfType("llm")[0]
	var req agenttrace.LLMRequest
	require.NoError(t, json.Unmarshal(d.Payload, &req))
	require.JSONEq(t, `{"messages":[{"role":"user","content":"look","parts":[{"type":"image","mime_type":"image/png","size":1024},{"type":"image","url":"https://example.com/a.png"}]}],"settings":{"response_format":"json_object","tool_choice":"auto","reasoning_effort":"low"}}`, string(d.Payload))
	require.JSONEq(t, `{"service_tier":"flex","messages":[{"role":"assistant","parts":[{"type":"refusal","text":"no"}]}]}`, string(d.Result))
}
