package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), &out, "test", stdout.New(stdout.WithWriter(&out), stdout.WithoutIDs()))
	require.NoError(t, err)
	s := out.String()
	for _, want := range []string{
		"● quickstart-agent 1.0.0  complete",
		"spans 6 (5 complete, 1 failed)  tokens 1166 (1067 in, 99 out)  cost $0.0037  ttft ",
		"└─ agent travel-assistant  complete",
		"   ├─ llm chat gpt-4o (plan)  complete",
		"finish=tool_calls",
		"   ├─ tool weather  failed",
		"error: *errors.errorString: weather service: upstream timeout after 100ms",
		"   ├─ tool search_places  complete",
		"   └─ llm chat gpt-4o (answer)  complete",
		"finish=stop",
		"summary: 6 spans (5 complete, 1 failed), 2 LLM calls, 1166 tokens, cost $0.0037",
		"stats: spans started=6 ended=6  records recorded=",
		"failed=0 dropped=0 queued=0",
	} {
		require.Contains(t, s, want)
	}
}
