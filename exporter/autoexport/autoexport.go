// Package autoexport chooses agenttrace exporters from the environment, so
// that where a program's traces go can change without a code change:
//
//	exporters, desc, err := autoexport.FromEnv()
//	if err != nil {
//		return err
//	}
//	tracer, err := agenttrace.New(agenttrace.WithExporter(exporters...))
//
// AGENTTRACE_EXPORTER holds one name or a comma-separated list of names:
//
//	stdout     a tree per instance on standard output (the default when
//	           unset and PREFACTOR_API_TOKEN is not set)
//	jsonl      one JSON object per record on standard output
//	prefactor  the Prefactor API, configured by the PREFACTOR_* variables
//	           (the default when unset and PREFACTOR_API_TOKEN is set)
//	none       no exporter: records are counted (Tracer.Stats) and discarded
//
// Names are case-insensitive; "none" cannot be combined with another name.
// The tree is colored when standard output is a terminal and NO_COLOR is
// not set.
package autoexport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

// EnvExporter is the variable that selects the exporters.
const EnvExporter = "AGENTTRACE_EXPORTER"

// ErrUnknownExporter is wrapped by the error FromEnv returns for a name it
// does not know.
var ErrUnknownExporter = errors.New("autoexport: unknown exporter")

// known lists the names AGENTTRACE_EXPORTER accepts.
var known = []string{"stdout", "jsonl", "prefactor", "none"}

type config struct {
	w        io.Writer
	prefOpts []prefactor.Option
}

// Option configures FromEnv.
type Option func(*config)

// WithStdout sets where the stdout and jsonl exporters write instead of
// os.Stdout (for tests, or to keep traces apart from a program's output).
// Output is colored only when it goes to os.Stdout.
func WithStdout(w io.Writer) Option { return func(c *config) { c.w = w } }

// WithPrefactor adds options for the Prefactor exporter, after the
// PREFACTOR_* variables (so they win).
func WithPrefactor(opts ...prefactor.Option) Option {
	return func(c *config) { c.prefOpts = append(c.prefOpts, opts...) }
}

// FromEnv returns the exporters the environment selects, in order, and a
// one-line description of them for a startup log line. An unknown name in
// AGENTTRACE_EXPORTER is an error wrapping ErrUnknownExporter; no exporter
// is returned with an error.
func FromEnv(opts ...Option) ([]agenttrace.Exporter, string, error) {
	c := config{w: os.Stdout}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	names, err := selected()
	if err != nil {
		return nil, "", err
	}
	var (
		exps  []agenttrace.Exporter
		descs []string
	)
	// To add an exporter: a name in known and a case here.
	for _, name := range names {
		switch name {
		case "stdout":
			opts := []stdout.Option{stdout.WithWriter(c.w)}
			if c.w == os.Stdout && colorTerminal() {
				opts = append(opts, stdout.WithColor(true))
			}
			exps = append(exps, stdout.New(opts...))
			descs = append(descs, "stdout (a trace tree per instance)")
		case "jsonl":
			exps = append(exps, stdout.New(stdout.WithWriter(c.w), stdout.WithJSONLines()))
			descs = append(descs, "stdout (JSON lines)")
		case "prefactor":
			exp, err := prefactor.New(c.prefOpts...)
			if err != nil {
				return nil, "", fmt.Errorf("autoexport: %w", err)
			}
			exps = append(exps, exp)
			descs = append(descs, exp.String())
		case "none":
			descs = append(descs, "none (records are counted and discarded)")
		}
	}
	return exps, strings.Join(descs, " + "), nil
}

// selected returns the exporter names the environment asks for, checked
// and without duplicates.
func selected() ([]string, error) {
	v := os.Getenv(EnvExporter)
	if strings.TrimSpace(v) == "" {
		return defaultNames(), nil
	}
	var names []string
	for _, f := range strings.Split(v, ",") {
		name := strings.ToLower(strings.TrimSpace(f))
		switch {
		case name == "":
			continue
		case !slices.Contains(known, name):
			return nil, fmt.Errorf("%w %q in %s=%q (want one or more of %s)",
				ErrUnknownExporter, name, EnvExporter, v, strings.Join(known, ", "))
		case !slices.Contains(names, name):
			names = append(names, name)
		}
	}
	if len(names) > 1 && slices.Contains(names, "none") {
		return nil, fmt.Errorf("autoexport: %s=%q: \"none\" cannot be combined with other exporters", EnvExporter, v)
	}
	if len(names) == 0 {
		return defaultNames(), nil
	}
	return names, nil
}

// defaultNames is what an unset AGENTTRACE_EXPORTER selects.
func defaultNames() []string {
	if strings.TrimSpace(os.Getenv(prefactor.EnvAPIToken)) != "" {
		return []string{"prefactor"}
	}
	return []string{"stdout"}
}

// colorTerminal reports whether standard output is a terminal that should
// get colors: see https://no-color.org.
func colorTerminal() bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
