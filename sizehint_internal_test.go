package agenttrace

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The size hints of the LLM payloads cover what they encode to, so that
// encodeSized writes them into one allocation, never regrown: an LLM call
// traced by llmhttp (metadata only, usage details, cost, metadata) and a
// request with settings and tools.
func TestSizeHintCoversEncoding(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	for name, v := range map[string]interface{ sizeHint() int }{
		"response": LLMResponse{ID: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", Model: "gpt-4o-mini-2024-07-18",
			FinishReason: "stop", ServiceTier: "default",
			Messages: []Message{{Role: "assistant", Parts: []ContentPart{{Type: PartThinking, Size: 812}, {Type: PartText, Size: 34}}}},
			Usage: &Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29,
				Details: map[string]int64{UsageCacheRead: 0, UsageReasoning: 0, "audio_input": 0, "accepted_prediction": 0}},
			Cost:     &Cost{Prompt: 2.85e-06, Completion: 6e-06, Total: 8.85e-06, Currency: "USD"},
			Metadata: map[string]any{"system_fingerprint": "fp_06737a9306", "cost_source": "price_table"}},
		"request": LLMRequest{Operation: "chat", Provider: "openai", Model: "gpt-4o-mini",
			Messages: []Message{{Role: "user", Content: "Hello!"}},
			Tools:    []ToolDefinition{{Name: "lookup", Description: "Look it up", Parameters: []byte(`{"type":"object"}`)}},
			Settings: &LLMSettings{Temperature: f(0.2), TopP: f(0.9), MaxTokens: i(1024), Seed: i(7), Stop: []string{"\n\n", "END"},
				ResponseFormat: "json_object", ToolChoice: "auto", ReasoningEffort: "low"},
			Stream: true, Metadata: map[string]any{"user": "u-1"}},
	} {
		b, err := appendValue(nil, v)
		require.NoError(t, err)
		n := v.sizeHint()
		require.LessOrEqual(t, len(b), n+n/8+64, "%s: %d bytes, hint %d: %s", name, len(b), n, b)
	}
}
