package autoexport_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/autoexport"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	treeDesc = "stdout (a trace tree per instance)"
	jsonDesc = "stdout (JSON lines)"
	noneDesc = "none (records are counted and discarded)"
)

func TestFromEnvUnset(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "") // restored after the test
	require.NoError(t, os.Unsetenv(autoexport.EnvExporter))
	exps, desc, err := autoexport.FromEnv()
	require.NoError(t, err)
	require.Len(t, exps, 1)
	require.IsType(t, &stdout.Exporter{}, exps[0])
	require.Equal(t, treeDesc, desc)
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		value string
		n     int
		desc  string
	}{
		{"", 1, treeDesc},
		{"stdout", 1, treeDesc},
		{" JSONL ", 1, jsonDesc},
		{"none", 0, noneDesc},
		{"stdout,jsonl", 2, treeDesc + " + " + jsonDesc},
		{"stdout, stdout,", 1, treeDesc},
		{",", 1, treeDesc},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(autoexport.EnvExporter, tc.value)
			exps, desc, err := autoexport.FromEnv()
			require.NoError(t, err)
			require.Len(t, exps, tc.n)
			require.Equal(t, tc.desc, desc)
			for _, e := range exps {
				require.IsType(t, &stdout.Exporter{}, e)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "kafka")
	exps, desc, err := autoexport.FromEnv()
	require.ErrorIs(t, err, autoexport.ErrUnknownExporter)
	require.EqualError(t, err,
		`autoexport: unknown exporter "kafka" in AGENTTRACE_EXPORTER="kafka" (want one or more of stdout, jsonl, none)`)
	require.Nil(t, exps)
	require.Empty(t, desc)

	t.Setenv(autoexport.EnvExporter, "stdout,otlp")
	_, _, err = autoexport.FromEnv()
	require.ErrorIs(t, err, autoexport.ErrUnknownExporter)
	require.ErrorContains(t, err, `unknown exporter "otlp"`)

	t.Setenv(autoexport.EnvExporter, "none,stdout")
	_, _, err = autoexport.FromEnv()
	require.ErrorContains(t, err, `"none" cannot be combined`)
}

func TestWithStdout(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"stdout", "● agent  complete"},
		{"jsonl", `{"kind":"instance_started"`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(autoexport.EnvExporter, tc.value)
			var buf bytes.Buffer
			exps, _, err := autoexport.FromEnv(autoexport.WithStdout(&buf))
			require.NoError(t, err)
			tr, err := agenttrace.New(agenttrace.WithExporter(exps...))
			require.NoError(t, err)
			_, inst := tr.StartInstance(context.Background())
			inst.End()
			require.NoError(t, tr.Shutdown(context.Background()))
			require.Contains(t, buf.String(), tc.want)
			require.NotContains(t, buf.String(), "\x1b[", "no colors outside a terminal")
		})
	}
}
