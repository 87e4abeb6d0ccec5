package llmhttp

import (
	"net/http"
	"strings"
)

// api is a wire format the transport understands.
type api uint8

const (
	apiNone api = iota
	apiChat
	apiResponses
	apiAnthropic
	apiGemini
)

// route is what the request's method, host and path say about the call.
type route struct {
	api      api
	provider string
	// model is the model named by the path (Gemini, Azure deployments,
	// Vertex), "" when the body names it.
	model string
	// stream is set when the path says the response is streamed (Gemini's
	// streamGenerateContent, Vertex's streamRawPredict).
	stream bool
}

// hostProviders names the provider of well-known OpenAI-compatible hosts
// (the OpenTelemetry gen_ai.provider.name values where one exists).
var hostProviders = []struct{ suffix, name string }{
	{"api.openai.com", "openai"},
	{".openai.azure.com", "azure.ai.openai"},
	{".services.ai.azure.com", "azure.ai.inference"},
	{".cognitiveservices.azure.com", "azure.ai.openai"},
	{"openrouter.ai", "openrouter"},
	{"api.groq.com", "groq"},
	{"api.deepseek.com", "deepseek"},
	{"api.mistral.ai", "mistral_ai"},
	{"api.x.ai", "x_ai"},
	{"api.together.xyz", "together"},
	{"api.fireworks.ai", "fireworks"},
	{"api.perplexity.ai", "perplexity"},
	{"api.anthropic.com", "anthropic"},
	{"generativelanguage.googleapis.com", "gcp.gemini"},
	{"aiplatform.googleapis.com", "gcp.vertex_ai"},
}

func hostProvider(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		if host[i+1:] == "11434" {
			return "ollama"
		}
		host = host[:i]
	}
	host = strings.ToLower(host)
	for _, h := range hostProviders {
		if host == strings.TrimPrefix(h.suffix, ".") || strings.HasSuffix(host, h.suffix) {
			return h.name
		}
	}
	return ""
}

// classify recognises an LLM API call; apiNone means pass through
// untraced. Paths are matched by suffix, so proxies and gateways that
// mount an API under a prefix (OpenRouter's /api/v1, Azure's
// /openai/deployments/{name}, vLLM and Ollama's /v1) are recognised.
func classify(r *http.Request) route {
	if r.Method != http.MethodPost || r.URL == nil {
		return route{}
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	host := hostProvider(r.URL.Host)
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		rt := route{api: apiChat, provider: orDefault(host, "openai")}
		if i := strings.Index(p, "/openai/deployments/"); i >= 0 {
			rest := p[i+len("/openai/deployments/"):]
			if j := strings.IndexByte(rest, '/'); j > 0 {
				rt.model = rest[:j]
			}
			if host == "" {
				rt.provider = "azure.ai.openai"
			}
		}
		return rt
	case strings.HasSuffix(p, "/responses"):
		return route{api: apiResponses, provider: orDefault(host, "openai")}
	case strings.HasSuffix(p, "/messages") && (strings.HasSuffix(p, "/v1/messages") || r.Header.Get("anthropic-version") != ""):
		return route{api: apiAnthropic, provider: orDefault(host, "anthropic")}
	}
	// Gemini and Vertex: .../models/{model}:generateContent.
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		return route{}
	}
	method := p[i+1:]
	j := strings.LastIndexByte(p[:i], '/')
	if j < 0 || !strings.HasSuffix(p[:j], "/models") {
		return route{}
	}
	model := p[j+1 : i]
	switch method {
	case "generateContent", "streamGenerateContent":
		prov := orDefault(host, "gcp.gemini")
		if strings.Contains(p, "/publishers/google/") && host == "" {
			prov = "gcp.vertex_ai"
		}
		return route{api: apiGemini, provider: prov, model: model, stream: method == "streamGenerateContent"}
	case "rawPredict", "streamRawPredict":
		if strings.Contains(p, "/publishers/anthropic/") {
			return route{api: apiAnthropic, provider: "gcp.vertex_ai", model: model, stream: method == "streamRawPredict"}
		}
	}
	return route{}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// operation is the GenAI operation name of an API.
func (a api) operation() string {
	if a == apiGemini {
		return "generate_content"
	}
	return "chat"
}
