package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/exporter/autoexport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "stdout")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	s := out.String()
	for _, want := range []string{
		"quickstart: tracing to stdout (a trace tree per instance)\n",
		"● quickstart-agent 1.0.0  complete  ",
		"│ spans 6 (5 complete, 1 failed)  llm calls 2  tokens 1166 (1067 in, 99 out)  cost $0.0037  ttft ",
		"│ user=user-1042 channel=web session=sess-7f3a\n",
		"└─ agent travel-assistant  complete  ",
		"   ├─ llm plan  complete  ",
		"finish=tool_calls\n",
		"   ├─ tool get_weather  failed  ",
		"call=call_wx41  error: weather API: context deadline exceeded\n",
		"   ├─ tool get_weather  complete  ",
		"   ├─ tool search_places  complete  ",
		"   └─ llm answer  complete  ",
		"streamed  tokens 696 (655 in, 41 out)  cost $0.0020  ttft ",
		"finish=stop\n",
		"\nanswer:  It will rain until evening",
		"summary: 6 spans (5 complete, 1 failed), 2 LLM calls, tokens 1166 (1067 in, 99 out), cost $0.0037, time to first token ",
		"stats:   spans started=6 ended=6, records exported=",
		"dropped=0, queued=0, export errors=0\n",
	} {
		require.Contains(t, s, want)
	}
	// The tree comes before the lines printed after Shutdown.
	require.Less(t, bytes.Index(out.Bytes(), []byte("└─ agent")), bytes.Index(out.Bytes(), []byte("answer:")))
}

func TestRunJSONLines(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "jsonl")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	require.Contains(t, out.String(), `{"kind":"instance_started","instance":{"id":"`)
	require.Contains(t, out.String(), `"kind":"instance_ended"`)
	require.Contains(t, out.String(), "stats:   spans started=6 ended=6")
}

func TestRunUnknownExporter(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "nope")
	var out bytes.Buffer
	require.ErrorIs(t, run(context.Background(), &out), autoexport.ErrUnknownExporter)
	require.Empty(t, out.String())
}
