package tsinterop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// skipOrFail skips the test, or fails it when AGENTTRACE_INTEROP_TS is
// "require".
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("AGENTTRACE_INTEROP_TS") == "require" {
		t.Fatalf("AGENTTRACE_INTEROP_TS=require: "+format, args...)
	}
	t.Skipf(format+" (set AGENTTRACE_INTEROP_TS=require to make this a failure)", args...)
}

// installSDK returns a directory whose node_modules holds the pinned SDK,
// installing it with npm ci the first time.
func installSDK(t *testing.T) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not on PATH, so the official TypeScript SDK cannot run")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skipOrFail(t, "npm is not on PATH, so the official TypeScript SDK cannot be installed")
	}
	pkg, err := os.ReadFile("package.json")
	require.NoError(t, err)
	lock, err := os.ReadFile("package-lock.json")
	require.NoError(t, err)
	dir := os.Getenv("AGENTTRACE_INTEROP_TS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		sum := sha256.Sum256(append(append([]byte{}, pkg...), lock...))
		dir = filepath.Join(cache, "agenttrace", "interop-ts", hex.EncodeToString(sum[:6]))
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@prefactor", "core", "package.json")); err == nil {
		return node, modules
	}
	// Install into a fresh directory beside the target and rename it into
	// place, so that concurrent test processes never see half an install.
	require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o755))
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "package-lock.json"), lock, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		skipOrFail(t, "npm ci of the official TypeScript SDK failed (%v): %s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(modules); statErr != nil { // not another process's install
			require.NoError(t, err)
		}
	}
	return node, modules
}

// summary is what run.mjs prints.
type summary struct {
	Errors []string          `json:"errors"`
	Spans  map[string]string `json:"spans"`
}

// runScript runs run.mjs against the server at apiURL and returns its
// summary; the error reports a failed run (the SDK logged errors).
func runScript(t *testing.T, apiURL, token, agentID string) (summary, error) {
	t.Helper()
	node, modules := installSDK(t)
	dir := t.TempDir()
	script, err := os.ReadFile("run.mjs")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run.mjs"), script, 0o644))
	require.NoError(t, os.Symlink(modules, filepath.Join(dir, "node_modules")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PREFACTOR_API_URL="+apiURL, "PREFACTOR_API_TOKEN="+token, "PREFACTOR_AGENT_ID="+agentID)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var sum summary
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	decodeErr := json.Unmarshal([]byte(lines[len(lines)-1]), &sum)
	// The token is the test server's, but keep it out of the log anyway.
	clean := strings.ReplaceAll(stderr.String(), token, "[token]")
	require.NoError(t, decodeErr, "run.mjs printed no summary (%v): stdout %q, stderr:\n%s", runErr, stdout.String(), clean)
	if runErr != nil || len(sum.Errors) > 0 {
		t.Logf("run.mjs stderr (first 2000 bytes):\n%.2000s", clean)
		return sum, fmt.Errorf("run.mjs: %v; the SDK reported %d error(s), the first: %.300s", runErr, len(sum.Errors), strings.ReplaceAll(first(sum.Errors), token, "[token]"))
	}
	return sum, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// keyShim is a reverse proxy that adds an idempotency_key to every POST
// body without one, as the SDK's later versions do (the reference's
// "TS puts idempotency_key at the top level"); everything else passes
// through unchanged. It lets the rest of the published SDK's wire format
// be checked against a server that requires keys.
func keyShim(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Uint64
	inner := proxy.Director
	proxy.Director = func(r *http.Request) {
		inner(r)
		if r.Method != http.MethodPost || r.Body == nil {
			return
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		var m map[string]json.RawMessage
		if err == nil && json.Unmarshal(b, &m) == nil && m != nil {
			if _, ok := m["idempotency_key"]; !ok {
				m["idempotency_key"], _ = json.Marshal(fmt.Sprintf("shim-%d-%d", time.Now().UnixNano(), n.Add(1)))
				b, _ = json.Marshal(m)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestOfficialSDKIntoPrefactortest(t *testing.T) {
	t.Run("as published", func(t *testing.T) {
		// The TypeScript SDK never sends environment_id, which an
		// account-scoped token requires: it works with deployment tokens.
		srv := prefactortest.NewServer(prefactortest.WithDeploymentToken())
		defer srv.Close()
		sum, err := runScript(t, srv.URL, srv.Token(), "")
		if err != nil && rejectedForKeys(srv, sum) {
			// A known mismatch, reported: the reference makes
			// idempotency_key optional, prefactortest requires it, and
			// @prefactor/core 0.2.9 (the only version on npm) sends none.
			t.Skipf("KNOWN MISMATCH, not a pass: prefactortest answers 422 idempotency_key required to every request of @prefactor/core 0.2.9, which sends no idempotency keys (the API reference makes them optional): %v", err)
		}
		require.NoError(t, err)
		checkRun(t, srv, sum)
	})
	t.Run("with idempotency keys added", func(t *testing.T) {
		srv := prefactortest.NewServer(prefactortest.WithDeploymentToken())
		defer srv.Close()
		sum, err := runScript(t, keyShim(t, srv.URL), srv.Token(), "")
		require.NoError(t, err)
		checkRun(t, srv, sum)
	})
}

// rejectedForKeys reports whether srv refused requests, all of them
// requests without an idempotency_key answered 422, and the SDK's errors
// name that field.
func rejectedForKeys(srv *prefactortest.Server, sum summary) bool {
	if !strings.Contains(first(sum.Errors), "idempotency_key: required") {
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
func checkRun(t *testing.T, srv *prefactortest.Server, sum summary) {
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
	agent, llm, tool, step := byName["support-agent"], byName["chat"], byName["refund"], byName["validate"]
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
