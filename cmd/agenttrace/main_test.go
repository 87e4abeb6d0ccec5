package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, or, re-executed by a test with AGENTTRACE_TEST_CHILD
// set, plays a child process: "serve ARGS..." runs the server;
// "ingest DB N" ingests into a database directly.
func TestMain(m *testing.M) {
	if mode := os.Getenv("AGENTTRACE_TEST_CHILD"); mode != "" {
		args := strings.Split(mode, "\x1f")
		switch args[0] {
		case "serve":
			os.Exit(serveProfiled(args))
		case "ingest":
			if err := childIngest(args[1:]); err != nil {
				fmt.Fprintln(os.Stderr, "ingest:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "unknown child mode", args[0])
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}

// serveProfiled runs the server; with AGENTTRACE_TEST_CPUPROFILE set, it
// writes the server's CPU profile there when it stops (SIGINT).
func serveProfiled(args []string) int {
	path := os.Getenv("AGENTTRACE_TEST_CPUPROFILE")
	if path == "" {
		return run(context.Background(), args, os.Stdout, os.Stderr)
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return 1
	}
	defer pprof.StopCPUProfile()
	return run(context.Background(), args, os.Stdout, os.Stderr)
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
