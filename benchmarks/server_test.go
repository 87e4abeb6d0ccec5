package benchmarks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/exporter/prefactor/prefactortest"
)

// serverEnv, set to a latency in nanoseconds, makes the benchmark binary a
// prefactortest server process instead (see startServer).
const serverEnv = "AGENTTRACE_BENCH_PREFACTORTEST"

func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(serverEnv); ok {
		serveChild(v)
		return
	}
	os.Exit(m.Run())
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverInfo is what the server process announces on its first line.
type serverInfo struct {
	URL, Token, AgentID, EnvironmentID string
}

// serverStats is the server process's answer to a line on its stdin.
type serverStats struct {
	Spans int
	CPU   time.Duration
}

// serveChild runs a prefactortest server until stdin closes: it prints
// its serverInfo, then a serverStats for every line it reads.
func serveChild(latency string) {
	srv := prefactortest.NewServer()
	defer srv.Close()
	ns, _ := strconv.ParseInt(latency, 10, 64)
	srv.SetLatency(time.Duration(ns))
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(serverInfo{srv.URL, srv.Token(), srv.AgentID(), srv.EnvironmentID()})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		_ = enc.Encode(serverStats{Spans: len(srv.AllSpans()), CPU: cpuTime()})
	}
}

// server is a prefactortest server in a process of its own, so that the
// CPU time of the benchmark's process is the tracer's and the exporter's
// alone.
type server struct {
	serverInfo
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// startServer starts a server process that answers after latency.
func startServer(b *testing.B, latency time.Duration) *server {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+strconv.FormatInt(int64(latency), 10))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &server{cmd: cmd, in: in, out: json.NewDecoder(out)}
	if err := s.out.Decode(&s.serverInfo); err != nil {
		s.close()
		b.Fatalf("server process: %v", err)
	}
	return s
}

// stats returns the spans the server holds and its process's CPU time.
func (s *server) stats(b *testing.B) serverStats {
	b.Helper()
	var st serverStats
	if _, err := fmt.Fprintln(s.in); err != nil {
		b.Fatal(err)
	}
	if err := s.out.Decode(&st); err != nil {
		b.Fatalf("server process: %v", err)
	}
	return st
}

// close ends the server process.
func (s *server) close() {
	_ = s.in.Close()
	_ = s.cmd.Wait()
}
