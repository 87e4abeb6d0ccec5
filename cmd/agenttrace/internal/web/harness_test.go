package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

const testToken = "viewer-test-token-5f2c"

// testServer is the server's shape on one loopback address: the Prefactor
// v1 ingest at /api/v1/ (prefactorapi over a SQLite file) and the viewer at
// /.
type testServer struct {
	URL       string
	API       *prefactorapi.API
	Store     prefactorapi.Store
	AgentID   string
	EnvID     string
	partition uint32
	hs        *httptest.Server
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "traces.db"), sqlitestore.Options{})
	require.NoError(t, err)
	const partition = 424242
	ts := &testServer{Store: st, partition: partition,
		AgentID: prefactorapi.NewPFID(partition), EnvID: prefactorapi.NewPFID(partition)}
	api, err := prefactorapi.New(st, prefactorapi.Config{AccountID: prefactorapi.NewPFID(partition), RequireIDs: true,
		AgentID: ts.AgentID, EnvironmentID: ts.EnvID})
	require.NoError(t, err)
	ts.API = api
	viewer, err := New(Config{API: api, Token: testToken})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeError(w, http.StatusUnauthorized, "bad_authtoken", "Token invalid or expired")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "unreadable body")
			return
		}
		ep, id := prefactorapi.Route(r.Method, r.URL.Path)
		ans := api.Do(r.Context(), ep, id, body, r.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ans.Status)
		_, _ = w.Write(ans.Body)
	}))
	mux.Handle("/", viewer)
	ts.hs = httptest.NewServer(mux)
	ts.URL = ts.hs.URL
	t.Cleanup(func() {
		ts.hs.Close()
		_ = st.Close()
	})
	return ts
}

// tracer returns a tracer exporting to the server through the Prefactor
// exporter, shut down at cleanup.
func (ts *testServer) tracer(t testing.TB, agent, version string, opts ...agenttrace.Option) *agenttrace.Tracer {
	t.Helper()
	exp, err := prefactor.New(prefactor.WithURL(ts.URL), prefactor.WithToken(testToken),
		prefactor.WithAgentID(ts.AgentID), prefactor.WithEnvironmentID(ts.EnvID),
		prefactor.WithErrorHandler(func(err error) { t.Errorf("export: %v", err) }))
	require.NoError(t, err)
	tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(exp), agenttrace.WithAgent(agent, version)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil && !errors.Is(err, agenttrace.ErrShutdown) {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tr
}

// pfid is the server's ID of an instance or span the tracer made.
func (ts *testServer) pfid(id agenttrace.ID) string { return prefactor.PFID(id, ts.partition) }

func flush(t testing.TB, tr *agenttrace.Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, tr.Flush(ctx))
}
