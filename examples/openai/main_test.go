package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAgainstFakeProvider(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("AGENTTRACE_EXPORTER", "")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	s := out.String()
	require.Contains(t, s, "using a fake provider")
	require.Contains(t, s, "answer:  Take a raincoat: it is 14°C with light rain in Paris.")
	require.Contains(t, s, "summary: 2 LLM calls, 4 spans, 194 tokens (165 prompt, 29 completion)")
	// gpt-4o-mini: (64 + 37) x $0.15 + 64 cached x $0.075 + 29 x $0.60 per MTok.
	require.Contains(t, s, "cost $0.000037")
	require.NotContains(t, s, "time to first token 0s")
}
