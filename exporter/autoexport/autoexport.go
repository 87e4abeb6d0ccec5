// Package autoexport chooses agenttrace exporters from the environment, so
// that a program's exporter can change without a code change.
//
// AGENTTRACE_EXPORTER selects:
//
//	stdout  a tree per instance on standard output (the default)
//	jsonl   one JSON object per record on standard output
//	none    no exporter (records are counted and discarded)
package autoexport

import (
	"fmt"
	"os"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

// EnvExporter is the variable that selects the exporter.
const EnvExporter = "AGENTTRACE_EXPORTER"

// FromEnv returns the exporters the environment selects and a one-line
// description of them. An unknown AGENTTRACE_EXPORTER value is an error.
func FromEnv() ([]agenttrace.Exporter, string, error) {
	return fromLookup(os.LookupEnv)
}

func fromLookup(lookup func(string) (string, bool)) ([]agenttrace.Exporter, string, error) {
	v, _ := lookup(EnvExporter)
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "stdout":
		// A Prefactor exporter, chosen when PREFACTOR_API_TOKEN is set, is
		// to be added here.
		return []agenttrace.Exporter{stdout.New()}, "stdout (trace tree per instance)", nil
	case "jsonl", "json":
		return []agenttrace.Exporter{stdout.New(stdout.WithJSONLines())}, "stdout (JSON lines)", nil
	case "none":
		return nil, "none (records are counted and discarded)", nil
	default:
		return nil, "", fmt.Errorf("autoexport: %s=%q is not one of stdout, jsonl, none", EnvExporter, v)
	}
}
