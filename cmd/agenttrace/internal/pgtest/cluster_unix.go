//go:build unix

package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

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
	port, err := FreePort()
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
