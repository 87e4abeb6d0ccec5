package llmhttp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The built-in patterns leave the snapshot suffix out, since a dated name
// is priced as its base name: they price every name as patterns that
// allow the suffix themselves would.
func TestBuiltinPatternsWithoutSnapshotSuffix(t *testing.T) {
	var withSuffix []ModelPrice
	for _, p := range builtinPrices {
		p.Pattern += snap
		withSuffix = append(withSuffix, p)
	}
	old, err := NewPriceTable(withSuffix...)
	require.NoError(t, err)
	bases := []string{"gpt-5.1", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-chat", "gpt-5.1-chat", "gpt-4.1", "gpt-4.1-mini",
		"gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "chatgpt-4o", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "gpt-3.5-turbo-0125",
		"o1", "o1-mini", "o3", "o3-mini", "o3-pro", "o4-mini", "text-embedding-3-small", "claude-opus-4-5", "claude-opus-4",
		"claude-opus-4-1", "claude-opus-4-0", "claude-sonnet-4", "claude-sonnet-4-5", "claude-3-7-sonnet", "claude-3-5-sonnet",
		"claude-haiku-4-5", "claude-3-5-haiku", "claude-3-haiku", "claude-3-opus", "gemini-3-pro", "gemini-2.5-pro",
		"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-1.5-pro",
		"gemini-1.5-flash", "my-model", "gpt", "claude", "gemini-2.5-flash-image"}
	suffixes := []string{"", "-2024-08-06", "-20250514", "@20250514", "-001", "-0125", "-0613", "-latest", "-preview",
		"-preview-05-20", "-exp-03-25", "-20250219-v1:0", "-mini", "-x", "-2024-08-06-x", "-preview-09-2025", "-tts"}
	now := time.Now()
	n := 0
	for _, b := range bases {
		for _, s := range suffixes {
			for _, name := range []string{b + s, "openai/" + b + s, "us.anthropic." + b + s} {
				want, wok := old.Lookup("", name, now)
				got, gok := DefaultPrices().Lookup("", name, now)
				require.Equal(t, wok, gok, name)
				require.Equal(t, want, got, name)
				n++
			}
		}
	}
	require.Greater(t, n, 2000)
}
