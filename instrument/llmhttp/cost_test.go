package llmhttp_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
	"github.com/agenttrace/agenttrace/instrument/llmhttp"
)

func TestPriceNamesAndSnapshots(t *testing.T) {
	p := llmhttp.DefaultPrices()
	now := time.Now()
	for model, input := range map[string]float64{
		"gpt-4o": 2.50, "gpt-4o-2024-08-06": 2.50, "gpt-4o-mini": 0.15, "gpt-4o-mini-2024-07-18": 0.15,
		"gpt-4.1": 2, "gpt-4.1-mini-2025-04-14": 0.40, "o3": 2, "o3-mini": 1.10, "o4-mini-2025-04-16": 1.10,
		"gpt-5": 1.25, "gpt-5-mini": 0.25, "gpt-4-0613": 30, "gpt-3.5-turbo-0125": 0.50,
		"claude-sonnet-4-5-20250929": 3, "claude-sonnet-4-20250514": 3, "claude-sonnet-4@20250514": 3,
		"claude-3-5-haiku-latest": 0.80, "claude-opus-4-1-20250805": 15, "claude-opus-4-5": 5, "claude-haiku-4-5": 1,
		"anthropic/claude-sonnet-4": 3, "openai/gpt-4o-mini": 0.15, "us.anthropic.claude-3-7-sonnet-20250219-v1:0": 3,
		"gemini-2.5-pro": 1.25, "gemini-2.5-flash": 0.30, "gemini-2.5-flash-lite": 0.10, "gemini-2.0-flash-001": 0.10,
		"gemini-2.5-flash-preview-05-20": 0.30, "models/gemini-1.5-pro": 1.25,
	} {
		got, ok := p.Lookup("", model, now)
		if assert.True(t, ok, model) {
			assert.Equal(t, input, got.Input, model)
		}
	}
	for _, model := range []string{"", "gpt-4o-mini-tts-x", "my-finetune", "llama3.1:8b", "claude-sonnet-4-6x", "gemini-2.5-flash-image-fake"} {
		_, ok := p.Lookup("", model, now)
		assert.False(t, ok, model)
	}
	assert.NotEmpty(t, p.AsOf())
}

func TestCostTiersAndCache(t *testing.T) {
	p := llmhttp.DefaultPrices()
	now := time.Now()
	// Gemini 2.5 Pro above 200k prompt tokens: the whole request at the
	// long-context rate.
	c, ok := p.Cost("gcp.gemini", "gemini-2.5-pro", agenttrace.Usage{PromptTokens: 250_000, CompletionTokens: 1000}, now)
	require.True(t, ok)
	assert.InDelta(t, 250_000*2.50/1e6, c.Prompt, 1e-9)
	assert.InDelta(t, 1000*15/1e6, c.Completion, 1e-9)
	c, _ = p.Cost("gcp.gemini", "gemini-2.5-pro", agenttrace.Usage{PromptTokens: 150_000, CompletionTokens: 1000}, now)
	assert.InDelta(t, 150_000*1.25/1e6, c.Prompt, 1e-9)
	// Anthropic cache writes by lifetime, reads at a tenth.
	c, _ = p.Cost("anthropic", "claude-sonnet-4-5", agenttrace.Usage{PromptTokens: 1000 + 200 + 300, CompletionTokens: 50, Details: map[string]int64{
		agenttrace.UsageCacheRead: 200, agenttrace.UsageCacheWrite: 300, agenttrace.UsageCacheWrite1h: 100, agenttrace.UsageCacheWrite5m: 200,
	}}, now)
	assert.InDelta(t, (1000*3+200*0.30+200*3.75+100*6)/1e6, c.Prompt, 1e-12)
	// Reasoning tokens are part of the output, priced once.
	c, _ = p.Cost("openai", "o3", agenttrace.Usage{PromptTokens: 10, CompletionTokens: 100, Details: map[string]int64{agenttrace.UsageReasoning: 80}}, now)
	assert.InDelta(t, 100*8/1e6, c.Completion, 1e-12)
	assert.Equal(t, "USD", c.Currency)
	_, ok = p.Cost("", "unknown-model", agenttrace.Usage{PromptTokens: 1}, now)
	assert.False(t, ok, "an unknown model has no cost, not a zero one")
}

func TestPriceOverrides(t *testing.T) {
	cut := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := llmhttp.DefaultPrices().With(
		llmhttp.ModelPrice{Pattern: `gpt-4o`, Price: llmhttp.Price{Input: 1, Output: 2}},
		llmhttp.ModelPrice{Pattern: `my-model`, Provider: "ollama", Price: llmhttp.Price{Input: 0.5, Output: 0.5}},
		llmhttp.ModelPrice{Pattern: `dated`, Price: llmhttp.Price{Input: 1}},
		llmhttp.ModelPrice{Pattern: `dated`, From: cut, Price: llmhttp.Price{Input: 2}},
	)
	require.NoError(t, err)
	got, _ := p.Lookup("openai", "gpt-4o", time.Now())
	assert.Equal(t, 1.0, got.Input, "an override wins")
	got, _ = p.Lookup("openai", "gpt-4o-mini", time.Now())
	assert.Equal(t, 0.15, got.Input, "other models keep the built-in price")
	_, ok := p.Lookup("openai", "my-model", time.Now())
	assert.False(t, ok, "restricted to its provider")
	got, ok = p.Lookup("ollama", "my-model", time.Now())
	assert.True(t, ok)
	got, _ = p.Lookup("", "dated", cut.Add(-time.Hour))
	assert.Equal(t, 1.0, got.Input)
	got, _ = p.Lookup("", "dated", cut.Add(time.Hour))
	assert.Equal(t, 2.0, got.Input, "the price in effect at the call")

	_, err = llmhttp.NewPriceTable(llmhttp.ModelPrice{Pattern: `(`})
	assert.Error(t, err)
}

func TestLoadPrices(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"prices":[{"pattern":"llama3\\.1:8b","provider":"ollama","from":"2025-01-01T00:00:00Z","input":0.01,"output":0.02}]}`), 0o600))
	p, err := llmhttp.LoadPrices(path)
	require.NoError(t, err)
	got, ok := p.Lookup("ollama", "llama3.1:8b", time.Now())
	require.True(t, ok)
	assert.Equal(t, 0.02, got.Output)
	_, ok = p.Lookup("", "gpt-4o", time.Now())
	assert.True(t, ok, "the built-in prices stay under the file's")

	require.NoError(t, os.WriteFile(path, []byte(`{"prices":[{"patern":"x"}]}`), 0o600))
	_, err = llmhttp.LoadPrices(path)
	assert.Error(t, err, "unknown fields are refused")
	_, err = llmhttp.LoadPrices(filepath.Join(dir, "missing.json"))
	assert.Error(t, err)
}

func TestUnknownModelAndProviderCost(t *testing.T) {
	tr, rec := agenttracetest.New(t)
	body := []byte(`{"id":"gen-1","model":"acme/unknown-1","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`)
	srv := serve(t, 200, "application/json", body, 0)
	before := llmhttp.ReadStats().CostUnknown
	_, _, err := post(t, newClient(tr), context.Background(), srv.URL+"/api/v1/chat/completions", `{"model":"acme/unknown-1","messages":[]}`)
	require.NoError(t, err)
	s := llmSpans(t, tr, rec, 1)[0]
	assert.Nil(t, s.Cost, "no price: no cost, never $0")
	assert.Equal(t, true, decodeResult(t, s).Metadata["cost_unknown"])
	assert.Equal(t, before+1, llmhttp.ReadStats().CostUnknown)

	// OpenRouter reports the cost itself: it wins over the table.
	tr2, rec2 := agenttracetest.New(t)
	body2 := []byte(`{"id":"gen-2","model":"openai/gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"cost":0.00042}}`)
	srv2 := serve(t, 200, "application/json", body2, 0)
	_, _, err = post(t, newClient(tr2), context.Background(), srv2.URL+"/api/v1/chat/completions", `{"model":"openai/gpt-4o","messages":[]}`)
	require.NoError(t, err)
	s2 := llmSpans(t, tr2, rec2, 1)[0]
	require.NotNil(t, s2.Cost)
	assert.Equal(t, 0.00042, s2.Cost.Total)
	assert.Equal(t, "provider", decodeResult(t, s2).Metadata["cost_source"])
}
