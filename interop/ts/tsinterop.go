// Package tsinterop runs the official Prefactor TypeScript SDK
// (@prefactor/core from npm, pinned in package.json and package-lock.json)
// against a Prefactor-compatible server, for tests: Run drives the agent run
// of run.mjs into the server at a URL, and the caller checks what the server
// stored. The tests of this package run it against prefactortest.
//
// The SDK is installed with npm ci into a cache directory
// ($AGENTTRACE_INTEROP_TS_DIR, or agenttrace/interop-ts/<hash of the
// package files> under the user cache directory) the first time. Without
// node or npm, or when the install fails (no registry), Run skips the test
// and says why; with AGENTTRACE_INTEROP_TS=require (as CI sets it) it fails
// the test instead.
package tsinterop

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed" // the script and the package files
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
)

var (
	//go:embed run.mjs
	script []byte
	//go:embed package.json
	packageJSON []byte
	//go:embed package-lock.json
	packageLock []byte
)

// The names of the spans of run.mjs's run, and what they are.
const (
	// SpanAgent is the agent span (type agent, complete), the root.
	SpanAgent = "support-agent"
	// SpanLLM is an llm span under the agent span, complete, with token
	// usage 812 prompt, 64 completion, 876 total.
	SpanLLM = "chat"
	// SpanTool is a tool span under the agent span that fails with a
	// TypeError "refund service down".
	SpanTool = "refund"
	// SpanStep is a chain span under the tool span, complete.
	SpanStep = "validate"
	// AgentVersion is the external identifier of the run's agent version.
	AgentVersion = "interop-1.0.0"
	// AgentName is the agent version's name.
	AgentName = "ts-interop"
	// SchemaVersion is the external identifier of the run's schema
	// version, whose span types are agent, llm, tool and chain.
	SchemaVersion = "interop-schema-1"
)

// Summary is what run.mjs reports.
type Summary struct {
	// Errors are the SDK's console errors and warnings (it reports
	// transport failures only there).
	Errors []string `json:"errors"`
	// Spans are the SDK's own span IDs (payload.span_id on the wire) by
	// span name.
	Spans map[string]string `json:"spans"`
}

// skipOrFail skips the test, or fails it when AGENTTRACE_INTEROP_TS is
// "require".
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("AGENTTRACE_INTEROP_TS") == "require" {
		t.Fatalf("AGENTTRACE_INTEROP_TS=require: "+format, args...)
	}
	t.Skipf(format+" (set AGENTTRACE_INTEROP_TS=require to make this a failure)", args...)
}

// install returns node and a node_modules directory holding the pinned
// SDK, installing it with npm ci the first time.
func install(t testing.TB) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not on PATH, so the official TypeScript SDK cannot run")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skipOrFail(t, "npm is not on PATH, so the official TypeScript SDK cannot be installed")
	}
	dir := os.Getenv("AGENTTRACE_INTEROP_TS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		sum := sha256.Sum256(append(append([]byte{}, packageJSON...), packageLock...))
		dir = filepath.Join(cache, "agenttrace", "interop-ts", hex.EncodeToString(sum[:6]))
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@prefactor", "core", "package.json")); err == nil {
		return node, modules
	}
	// Install into a fresh directory beside the target and rename it into
	// place, so that concurrent test processes never see half an install.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("tsinterop: %v", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatalf("tsinterop: %v", err)
	}
	defer os.RemoveAll(tmp)
	for name, b := range map[string][]byte{"package.json": packageJSON, "package-lock.json": packageLock} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			t.Fatalf("tsinterop: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		skipOrFail(t, "npm ci of the official TypeScript SDK failed (%v): %s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(modules); statErr != nil { // not another process's install
			t.Fatalf("tsinterop: %v", err)
		}
	}
	return node, modules
}

// Run runs run.mjs against the Prefactor API at apiURL with token (and
// agentID, when not empty) and returns its summary. The error reports a
// run in which the SDK logged errors or the script failed; the token is
// kept out of it and out of the test log.
func Run(t testing.TB, apiURL, token, agentID string) (Summary, error) {
	t.Helper()
	node, modules := install(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run.mjs"), script, 0o644); err != nil {
		t.Fatalf("tsinterop: %v", err)
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("tsinterop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PREFACTOR_API_URL="+apiURL, "PREFACTOR_API_TOKEN="+token, "PREFACTOR_AGENT_ID="+agentID)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	hide := func(s string) string {
		if token == "" {
			return s
		}
		return strings.ReplaceAll(s, token, "[token]")
	}
	var sum Summary
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		return sum, fmt.Errorf("run.mjs printed no summary (%v, %v): stdout %q, stderr:\n%.2000s", runErr, err, hide(stdout.String()), hide(stderr.String()))
	}
	if runErr != nil || len(sum.Errors) > 0 {
		t.Logf("run.mjs stderr (first 2000 bytes):\n%.2000s", hide(stderr.String()))
		firstErr := ""
		if len(sum.Errors) > 0 {
			firstErr = sum.Errors[0]
		}
		return sum, fmt.Errorf("run.mjs: %v; the SDK reported %d error(s), the first: %.300s", runErr, len(sum.Errors), hide(firstErr))
	}
	return sum, nil
}

// KeyShim starts a reverse proxy to target that adds an idempotency_key to
// every POST body without one, at the top level, as the SDK's later
// versions do; everything else passes through unchanged. It returns the
// proxy's URL; the proxy stops when the test ends. It lets the rest of the
// published SDK's wire format be checked against a server that requires
// keys.
func KeyShim(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("tsinterop: %v", err)
	}
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
