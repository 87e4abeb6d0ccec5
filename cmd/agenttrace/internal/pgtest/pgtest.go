// Package pgtest gives tests a PostgreSQL database: the server of
// AGENTTRACE_TEST_POSTGRES (a DSN) when it is set, else a throwaway cluster
// of the local PostgreSQL installation (initdb and pg_ctl on PATH or under
// /usr/lib/postgresql/*/bin) started in a temporary directory on a loopback
// port, as the current user, or as the "postgres" user when running as
// root (initdb refuses root). The cluster starts on first use and stops,
// its directory removed, at Stop, which the package's TestMain calls after
// its tests. Without either, the tests that ask for a database skip,
// saying why, unless AGENTTRACE_TEST_POSTGRES is "require" (as in CI):
// then they fail.
//
// NewSchema gives each test an empty schema of its own (the search_path of
// the DSN it returns), dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

var cluster struct {
	once sync.Once
	dsn  string // the server's DSN, "" if none
	why  string // why there is none
	stop func()
}

// DSN returns the DSN of the test server, starting the cluster the first
// time; it skips t (or fails it, with AGENTTRACE_TEST_POSTGRES=require)
// when there is none.
func DSN(t testing.TB) string {
	t.Helper()
	env := os.Getenv("AGENTTRACE_TEST_POSTGRES")
	if env != "" && env != "require" {
		return env
	}
	cluster.once.Do(startCluster)
	if cluster.dsn == "" {
		if env == "require" {
			t.Fatalf("AGENTTRACE_TEST_POSTGRES=require, but no PostgreSQL: %s", cluster.why)
		}
		t.Skipf("no PostgreSQL to test on: %s (set AGENTTRACE_TEST_POSTGRES to a DSN, or install Debian's postgresql package)", cluster.why)
	}
	return cluster.dsn
}

// Stop stops the cluster and removes its directory, if one was started.
// Call it from TestMain after the tests.
func Stop() {
	if cluster.stop != nil {
		cluster.stop()
	}
}

// FreePort returns a loopback TCP port that nothing listened on a moment
// ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewSchema creates an empty schema on the test server, dropped when the
// test ends, and returns a DSN whose search_path names it.
func NewSchema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "agenttrace_test_" + hex.EncodeToString(b[:])
	exec := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		require.NoError(t, err)
	}
	exec("CREATE SCHEMA " + name)
	t.Cleanup(func() { exec("DROP SCHEMA " + name + " CASCADE") })
	return withParam(t, dsn, "search_path", name)
}

// withParam adds a run-time parameter to a DSN (URL or key=value form).
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, key+"=") {
		require.NoError(t, errors.New("the DSN sets "+key+" already"))
	}
	return dsn + " " + key + "=" + value
}
