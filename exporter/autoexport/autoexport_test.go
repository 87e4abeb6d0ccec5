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
	"github.com/agenttrace/agenttrace/exporter/prefactor"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	treeDesc = "stdout (a trace tree per instance)"
	jsonDesc = "stdout (JSON lines)"
	noneDesc = "none (records are counted and discarded)"
)

func TestFromEnvUnset(t *testing.T) {
	t.Setenv(prefactor.EnvAPIToken, "")
	t.Setenv(autoexport.EnvExporter, "") // restored after the test
	require.NoError(t, os.Unsetenv(autoexport.EnvExporter))
	exps, desc, err := autoexport.FromEnv()
	require.NoError(t, err)
	require.Len(t, exps, 1)
	require.IsType(t, &stdout.Exporter{}, exps[0])
	require.Equal(t, treeDesc, desc)
}

func TestFromEnv(t *testing.T) {
	t.Setenv(prefactor.EnvAPIToken, "")
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
		`autoexport: unknown exporter "kafka" in AGENTTRACE_EXPORTER="kafka" (want one or more of stdout, jsonl, prefactor, none)`)
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

func TestFromEnvPrefactor(t *testing.T) {
	const secret = "pf-secret-token-value"
	t.Setenv(autoexport.EnvExporter, "")
	t.Setenv(prefactor.EnvAPIToken, secret)
	t.Setenv(prefactor.EnvAPIURL, "http://127.0.0.1:1")
	exps, desc, err := autoexport.FromEnv()
	require.NoError(t, err)
	require.Len(t, exps, 1, "a token selects the Prefactor exporter")
	require.IsType(t, &prefactor.Exporter{}, exps[0])
	require.Contains(t, desc, "prefactor exporter (http://127.0.0.1:1")
	require.NotContains(t, desc, secret)
	require.NoError(t, exps[0].Shutdown(context.Background()))

	t.Setenv(autoexport.EnvExporter, "prefactor,stdout")
	exps, _, err = autoexport.FromEnv(autoexport.WithPrefactor(prefactor.WithMode(prefactor.ModeSingle)))
	require.NoError(t, err)
	require.Len(t, exps, 2)

	t.Setenv(prefactor.EnvAPIURL, "not a url")
	_, _, err = autoexport.FromEnv()
	require.ErrorIs(t, err, prefactor.ErrConfig)
	require.NotContains(t, err.Error(), secret)

	t.Setenv(prefactor.EnvAPIToken, "")
	t.Setenv(autoexport.EnvExporter, "prefactor")
	_, _, err = autoexport.FromEnv()
	require.ErrorIs(t, err, prefactor.ErrConfig)
}
