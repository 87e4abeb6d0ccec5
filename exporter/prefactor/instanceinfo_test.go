package prefactor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

// What the API has no instance field for travels in an "instance" object
// of the instance's root spans' payload, and time to first token in a
// span's result as ttft_ms: the local server's run listing reads both.
func TestInstanceInfoAndTTFTOnTheWire(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, run := h.tr.StartInstance(context.Background(), agenttrace.WithUserID("user-42"),
		agenttrace.WithGroupID("team-7"), agenttrace.WithChannel("web"), agenttrace.WithInstanceName("refund run"),
		agenttrace.WithIPAddress("203.0.113.9"), agenttrace.WithUserAgent("curl/8"))
	actx, agent := h.tr.Start(ctx, "agent", map[string]any{"goal": "refund"})
	_, llm := h.tr.Start(actx, "llm", agenttrace.LLMRequest{Model: "gpt-4o"})
	first := time.Now().Add(150 * time.Millisecond)
	llm.MarkFirstTokenAt(first)
	llm.EndAt(first.Add(time.Second))
	_, own := h.tr.Start(ctx, "chain", map[string]any{"instance": "the caller's own"})
	own.End()
	agent.End()
	run.End()
	h.shutdown(t)

	byType := map[string]map[string]json.RawMessage{}
	results := map[string]map[string]json.RawMessage{}
	for _, s := range h.srv.AllSpans() {
		var p, r map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(s.Payload, &p))
		if s.ResultPayload != nil {
			require.NoError(t, json.Unmarshal(s.ResultPayload, &r))
		}
		byType[s.SchemaName], results[s.SchemaName] = p, r
	}
	require.JSONEq(t, `{"name":"refund run","user_id":"user-42","group_id":"team-7","channel":"web",
		"ip_address":"203.0.113.9","user_agent":"curl/8"}`, string(byType["agent"]["instance"]))
	require.JSONEq(t, `"refund"`, string(byType["agent"]["goal"]), "the payload is kept")
	require.NotContains(t, byType["llm"], "instance", "only root spans carry it")
	require.JSONEq(t, `"the caller's own"`, string(byType["chain"]["instance"]), "a payload's own key wins")
	var ttft float64
	require.NoError(t, json.Unmarshal(results["llm"]["ttft_ms"], &ttft))
	require.InDelta(t, 150, ttft, 1)
	require.NotContains(t, results["agent"], "ttft_ms")
}
