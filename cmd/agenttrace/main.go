// Command agenttrace runs the local agenttrace server and reads what it
// stored.
//
//	agenttrace serve  [--addr 127.0.0.1:7411] [--db PATH] [--token TOKEN]
//	agenttrace list   [--agent CODE] [--version V] [--user U] [--group G] [--search S] [--page N]
//	agenttrace show   ID
//	agenttrace agents
//
// serve answers the Prefactor v1 ingest and agents APIs under /api/v1
// and the run listing under /api/v2/AgentInstance. list, show and agents
// read the same database (--db) or a running server (--server URL, with
// --token). Every command takes --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `agenttrace: the local agenttrace server and viewer.

Usage:
  agenttrace serve  [--addr 127.0.0.1:7411] [--db PATH] [--token TOKEN]   run the server
  agenttrace list   [--agent CODE] [--version V] [--user U] [--group G] [--search S] [--page N]
                                                                         list runs
  agenttrace show   ID                                                   show one run as a tree
  agenttrace agents                                                      list the agents

Run "agenttrace COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs a command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "list":
		err = list(ctx, args[1:], stdout, stderr)
	case "show":
		err = show(ctx, args[1:], stdout, stderr)
	case "agents":
		err = agents(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "agenttrace: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "agenttrace:", err)
	return 1
}

var errUsage = errors.New("usage")
