package llmhttp

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		url, header string
		want        route
	}{
		{"https://api.openai.com/v1/chat/completions", "", route{api: apiChat, provider: "openai"}},
		{"https://api.openai.com/v1/responses", "", route{api: apiResponses, provider: "openai"}},
		{"https://my.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "", route{api: apiChat, provider: "azure.ai.openai", model: "prod-4o"}},
		{"https://my.openai.azure.com/openai/v1/chat/completions", "", route{api: apiChat, provider: "azure.ai.openai"}},
		{"https://openrouter.ai/api/v1/chat/completions", "", route{api: apiChat, provider: "openrouter"}},
		{"http://localhost:11434/v1/chat/completions", "", route{api: apiChat, provider: "ollama"}},
		{"http://vllm.internal:8000/v1/chat/completions", "", route{api: apiChat, provider: "openai"}},
		{"https://api.groq.com/openai/v1/chat/completions", "", route{api: apiChat, provider: "groq"}},
		{"https://api.anthropic.com/v1/messages", "", route{api: apiAnthropic, provider: "anthropic"}},
		{"https://gateway.example/anthropic/messages", "2023-06-01", route{api: apiAnthropic, provider: "anthropic"}},
		{"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", "", route{api: apiGemini, provider: "gcp.gemini", model: "gemini-2.5-flash"}},
		{"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "", route{api: apiGemini, provider: "gcp.gemini", model: "gemini-2.5-flash", stream: true}},
		{"https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:generateContent", "", route{api: apiGemini, provider: "gcp.vertex_ai", model: "gemini-2.0-flash-001"}},
		{"https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict", "", route{api: apiAnthropic, provider: "gcp.vertex_ai", model: "claude-sonnet-4@20250514", stream: true}},
		{"https://api.openai.com/v1/models", "", route{}},
		{"https://api.openai.com/v1/files", "", route{}},
		{"https://example.com/messages", "", route{}},
	} {
		r, _ := http.NewRequest(http.MethodPost, c.url, nil)
		if c.header != "" {
			r.Header.Set("anthropic-version", c.header)
		}
		assert.Equal(t, c.want, classify(r), c.url)
	}
	get, _ := http.NewRequest(http.MethodGet, "https://api.openai.com/v1/responses/resp_1", nil)
	assert.Equal(t, route{}, classify(get), "only POSTs are calls")
}
