package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
)

// record sends one named run of agent to the test server.
func record(t *testing.T, ts *testServer, agent, name string) {
	t.Helper()
	exp, err := prefactor.New(prefactor.WithURL(ts.hs.URL), prefactor.WithToken(testToken))
	require.NoError(t, err)
	tr, err := agenttrace.New(agenttrace.WithExporter(exp), agenttrace.WithAgent(agent, "1.0.0"))
	require.NoError(t, err)
	ctx, run := tr.StartInstance(context.Background(), agenttrace.WithInstanceName(name))
	_, span := tr.Start(ctx, "tool", agenttrace.ToolInput{Name: "t"})
	span.End()
	run.End()
	require.NoError(t, tr.Shutdown(context.Background()))
}

// agenttrace list without --agent: nothing to list, the only agent's runs,
// or an error naming the agents when there are several.
func TestListPicksTheOnlyAgent(t *testing.T) {
	ts := startServer(t, nil)
	list := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := list(context.Background(), append([]string{"--server", ts.hs.URL, "--token", testToken}, args...), &out, &errOut)
		return out.String(), err
	}
	out, err := list()
	require.NoError(t, err)
	require.Equal(t, "no agents yet\n", out)

	record(t, ts, "support-bot", "first run")
	out, err = list()
	require.NoError(t, err)
	require.Contains(t, out, "first run")
	require.Contains(t, out, "page 1 of 1, 1 runs\n")

	record(t, ts, "billing-bot", "second run")
	_, err = list()
	require.ErrorContains(t, err, "several agents")
	require.ErrorContains(t, err, "support-bot")
	require.ErrorContains(t, err, "billing-bot")
	out, err = list("--agent", "billing-bot")
	require.NoError(t, err)
	require.Contains(t, out, "second run")
	require.NotContains(t, out, "first run")
}
