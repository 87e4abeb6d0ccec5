package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// The tests run on the PostgreSQL server of AGENTTRACE_TEST_POSTGRES (a
// DSN) when it is set. Otherwise they start a throwaway cluster of the
// local PostgreSQL installation (initdb and pg_ctl on PATH or under
// /usr/lib/postgresql/*/bin) in a temporary directory, on a loopback port,
// as the current user, or as the "postgres" user when running as root
// (initdb refuses root); it is stopped and removed when the tests end.
// Without either they skip, saying why, unless AGENTTRACE_TEST_POSTGRES is
// "require" (as in CI: then a missing server fails them).
//
// Each store gets a schema of its own (search_path in its DSN), dropped
// when its test ends.

var cluster struct {
	once sync.Once
	dsn  string // the server's DSN, "" if none
	why  string // why there is none
	stop func()
}

// serverDSN returns the DSN of the test server, starting the cluster the
// first time; it skips t when there is none.
func serverDSN(t testing.TB) string {
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

// stopCluster stops the cluster, if one was started (from TestMain).
func stopCluster() {
	if cluster.stop != nil {
		cluster.stop()
	}
}

// pgBin finds a PostgreSQL program: on PATH, else in the newest
// /usr/lib/postgresql/*/bin.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is neither on PATH nor under /usr/lib/postgresql/*/bin", name)
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func startCluster() {
	fail := func(format string, args ...any) { cluster.why = fmt.Sprintf(format, args...) }
	initdb, err := pgBin("initdb")
	if err != nil {
		fail("%v", err)
		return
	}
	pgctl, err := pgBin("pg_ctl")
	if err != nil {
		fail("%v", err)
		return
	}
	// initdb and postgres refuse to run as root: run them as "postgres".
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			fail("running as root and there is no postgres user to run the cluster as: %v", err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "agenttrace-pg-")
	if err != nil {
		fail("%v", err)
		return
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			cleanup()
			fail("%v", err)
			return
		}
	}
	run := func(name string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v: %s", filepath.Base(name), args[0], err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run(initdb, "-D", data, "-U", "agenttrace", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		cleanup()
		fail("%v", err)
		return
	}
	port, err := freePort()
	if err != nil {
		cleanup()
		fail("%v", err)
		return
	}
	// fsync off: a test cluster need not survive the machine.
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -F -c max_connections=60", port, dir)
	if err := run(pgctl, "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		cleanup()
		fail("%v; log: %s", err, log)
		return
	}
	cluster.dsn = fmt.Sprintf("postgres://agenttrace@127.0.0.1:%d/postgres?sslmode=disable", port)
	cluster.stop = func() {
		_ = run(pgctl, "stop", "-w", "-m", "fast", "-D", data)
		cleanup()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newSchema creates an empty schema on the test server, dropped when the
// test ends, and returns a DSN whose search_path names it.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := serverDSN(t)
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
