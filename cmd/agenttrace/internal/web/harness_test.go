package web

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/server"
	"github.com/agenttrace/agenttrace/cmd/agenttrace/internal/sqlitestore"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

const testToken = "viewer-test-token-5f2c"

// testServer is `agenttrace serve` on a loopback address: the server's
// APIs (package server, over a SQLite file) with the viewer mounted as the
// command mounts it.
type testServer struct {
	URL   string
	API   *prefactorapi.API
	Store prefactorapi.Store
	hs    *httptest.Server
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	return newTestServerAt(t, filepath.Join(t.TempDir(), "traces.db"))
}

func newTestServerAt(t testing.TB, path string) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: st, Token: testToken})
	require.NoError(t, err)
	ts := &testServer{Store: st, API: srv.API()}
	ts.hs = httptest.NewServer(Mount(srv, Config{API: srv.API(), Token: testToken}))
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
		prefactor.WithEnvironmentID(server.EnvironmentID),
		prefactor.WithErrorHandler(func(err error) { t.Errorf("export: %v", err) }))
	require.NoError(t, err)
	tr, err := agenttrace.New(append([]agenttrace.Option{agenttrace.WithExporter(exp), agenttrace.WithAgent(agent, version)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil && !errors.Is(err, agenttrace.ErrShutdown) {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tr
}

// runID finds the server's ID of the run named name (the server makes
// the IDs the exporter then learns).
func (ts *testServer) runID(t testing.TB, name string) string {
	t.Helper()
	id := ""
	require.NoError(t, ts.Store.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		ins, _, err := tx.ListInstances(prefactorapi.InstanceQuery{})
		for _, in := range ins {
			if in.Run.Name == name {
				id = in.ID
			}
		}
		return err
	}))
	require.NotEmpty(t, id, "no run named %q", name)
	return id
}

// failedSpan finds the server's ID of a run's one failed span.
func (ts *testServer) failedSpan(t testing.TB, runID string) string {
	t.Helper()
	ids := ts.failedSpans(t, runID)
	require.Len(t, ids, 1)
	return ids[0]
}

// failedSpans finds the server's IDs of a run's failed spans, in creation
// order.
func (ts *testServer) failedSpans(t testing.TB, runID string) []string {
	t.Helper()
	var ids []string
	require.NoError(t, ts.Store.View(context.Background(), func(tx prefactorapi.ReadTx) error {
		spans, err := tx.ListSpans(runID)
		for _, s := range spans {
			if s.Status == "failed" {
				ids = append(ids, s.ID)
			}
		}
		return err
	}))
	return ids
}

func flush(t testing.TB, tr *agenttrace.Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	require.NoError(t, tr.Flush(ctx))
}

// flushTimeout bounds a flush or shutdown: generous (the race detector
// slows SQLite and the exporter several times), it only stops a hang.
const flushTimeout = 5 * time.Minute
