package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/exporter/autoexport"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
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
		"│ name=\"Rainy afternoon in Lisbon\" user=user-1042 channel=web session=sess-7f3a\n",
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

// The quickstart scenario lands in the Prefactor API complete and correct
// (here the fake one from prefactortest, selected by PREFACTOR_API_TOKEN).
func TestRunToPrefactor(t *testing.T) {
	srv := prefactortest.NewServer()
	defer srv.Close()
	t.Setenv(autoexport.EnvExporter, "")
	t.Setenv(prefactor.EnvAPIURL, srv.URL)
	t.Setenv(prefactor.EnvAPIToken, srv.Token())
	t.Setenv(prefactor.EnvAgentID, srv.AgentID())
	t.Setenv(prefactor.EnvEnvironmentID, srv.EnvironmentID())
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	require.Contains(t, out.String(), "quickstart: tracing to prefactor exporter ("+srv.URL)
	require.NotContains(t, out.String(), srv.Token())
	require.Contains(t, out.String(), "dropped=0, queued=0, export errors=0\n")

	require.NoError(t, srv.Validate())
	insts := srv.Instances()
	require.Len(t, insts, 1)
	in := insts[0]
	require.Equal(t, "complete", in.Status)
	require.Contains(t, string(in.AgentVersion), `"name":"quickstart-agent"`)
	spans := srv.Spans(in.ID)
	require.Len(t, spans, 6)
	var root prefactortest.Span
	kids := map[string][]prefactortest.Span{}
	for _, s := range spans {
		require.Equal(t, 1, s.Creates)
		require.False(t, s.FinishedAt.Before(s.StartedAt), "%s ends after it starts", s.ID)
		if s.ParentID == "" {
			root = s
			continue
		}
		kids[s.ParentID] = append(kids[s.ParentID], s)
	}
	require.Equal(t, "agent", root.SchemaName)
	require.Equal(t, "complete", root.Status)
	require.Contains(t, string(root.Payload), `"name":"Rainy afternoon in Lisbon"`, "the run's name, which run listings show")
	var got []string
	for _, k := range kids[root.ID] {
		got = append(got, k.SchemaName+":"+k.Status)
		require.False(t, k.StartedAt.Before(root.StartedAt))
		require.False(t, k.FinishedAt.After(root.FinishedAt))
	}
	require.Equal(t, []string{"llm:complete", "tool:failed", "tool:complete", "tool:complete", "llm:complete"}, got)
	plan := kids[root.ID][0]
	require.Contains(t, string(plan.Payload), `"model":`)
	require.Contains(t, string(plan.ResultPayload), `"finish_reason":"tool_calls"`)
	require.Contains(t, string(kids[root.ID][1].ResultPayload), "context deadline exceeded")
	answer := kids[root.ID][4]
	require.Contains(t, string(answer.ResultPayload), `"prompt_tokens":655`)
}
