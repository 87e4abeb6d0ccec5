package prefactortest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client talks to a test server over loopback with net/http.
type client struct {
	t   *testing.T
	srv *prefactortest.Server
	hc  *http.Client
	tok string
}

func newClient(t *testing.T, opts ...prefactortest.Option) *client {
	t.Helper()
	srv := prefactortest.NewServer(opts...)
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, srv: srv, hc: &http.Client{Timeout: 5 * time.Second, Transport: tr}, tok: srv.Token()}
}

type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r reply) code() string { s, _ := r.Body["code"].(string); return s }

func (r reply) details() map[string]any { d, _ := r.Body["details"].(map[string]any); return d }

func (r reply) id() string { s, _ := r.details()["id"].(string); return s }

func (r reply) control() map[string]any { c, _ := r.Body["control"].(map[string]any); return c }

func (r reply) errors() map[string]any { e, _ := r.Body["errors"].(map[string]any); return e }

func (r reply) outputs() map[string]any { o, _ := r.Body["outputs"].(map[string]any); return o }

// call sends a request; body is nil, a string (sent as is) or a value
// encoded as JSON.
func (c *client) call(method, path string, body any) (reply, error) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, rd)
	require.NoError(c.t, err)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r, nil
}

// must sends a request and checks the answer's status.
func (c *client) must(method, path string, body any, status int) reply {
	c.t.Helper()
	r, err := c.call(method, path, body)
	require.NoError(c.t, err)
	require.Equal(c.t, status, r.Status, r.Raw)
	return r
}

// mustErr sends a request and checks the answer's status and error code.
func (c *client) mustErr(method, path string, body any, status int, code string) reply {
	c.t.Helper()
	r := c.must(method, path, body, status)
	require.Equal(c.t, "error", r.Body["status"], r.Raw)
	require.Equal(c.t, code, r.code(), r.Raw)
	return r
}

var keyN atomic.Int64

// key returns a new idempotency key (long enough for bulk items).
func key() string { return fmt.Sprintf("test-key-%06d", keyN.Add(1)) }

const (
	pathRegister = "/api/v1/agent_instance/register"
	pathSpans    = "/api/v1/agent_spans"
	pathBulk     = "/api/v1/bulk"
)

func instPath(id, action string) string {
	if action == "" {
		return "/api/v1/agent_instance/" + id
	}
	return "/api/v1/agent_instance/" + id + "/" + action
}

func spanFinishPath(id string) string { return "/api/v1/agent_spans/" + id + "/finish" }

// schema is a schema version with the span types llm and tool.
func schema() map[string]any {
	return map[string]any{"external_identifier": "s1", "span_type_schemas": []any{
		map[string]any{"name": "llm", "title": "LLM call", "params_schema": map[string]any{"type": "object"}},
		map[string]any{"name": "tool", "params_schema": map[string]any{}},
	}}
}

// registerBody is a valid register body, with extra fields set (nil
// deletes one).
func (c *client) registerBody(extra map[string]any) map[string]any {
	body := map[string]any{"agent_id": c.srv.AgentID(), "environment_id": c.srv.EnvironmentID(),
		"agent_version":        map[string]any{"external_identifier": "v1", "name": "agent", "description": "d"},
		"agent_schema_version": schema(), "idempotency_key": key()}
	for k, v := range extra {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	return body
}

// register registers an instance and returns its ID.
func (c *client) register(extra map[string]any) string {
	c.t.Helper()
	return c.must("POST", pathRegister, c.registerBody(extra), 200).id()
}

// started registers and starts an instance.
func (c *client) started() string {
	c.t.Helper()
	id := c.register(nil)
	c.must("POST", instPath(id, "start"), map[string]any{"idempotency_key": key()}, 200)
	return id
}

// spanBody is a span create body (llm, with a payload).
func spanBody(inst, status string, extra map[string]any) map[string]any {
	d := map[string]any{"agent_instance_id": inst, "schema_name": "llm", "status": status, "payload": map[string]any{"m": 1}}
	for k, v := range extra {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	return map[string]any{"details": d, "idempotency_key": key()}
}

// span creates a span and returns the answer.
func (c *client) span(inst, status string, extra map[string]any) reply {
	c.t.Helper()
	r, err := c.call("POST", pathSpans, spanBody(inst, status, extra))
	require.NoError(c.t, err)
	return r
}

// finishSpan finishes a span.
func (c *client) finishSpan(id string, fields map[string]any) reply {
	c.t.Helper()
	body := map[string]any{"idempotency_key": key()}
	for k, v := range fields {
		body[k] = v
	}
	r, err := c.call("POST", spanFinishPath(id), body)
	require.NoError(c.t, err)
	return r
}

var pfidN atomic.Int64

// otherPFID returns a new PFID with the time and partition of id (its last
// six characters from a counter).
func otherPFID(t *testing.T, id string) string {
	t.Helper()
	require.Len(t, id, 32)
	const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	n := pfidN.Add(1)
	var tail [6]byte
	for i := 5; i >= 0; i-- {
		tail[i] = crockford[n&31]
		n >>= 5
	}
	return id[:26] + string(tail[:])
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
