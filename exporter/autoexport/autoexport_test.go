package autoexport_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/autoexport"
	"github.com/agenttrace/agenttrace/exporter/stdout"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		value string
		n     int
		desc  string
	}{
		{"", 1, "stdout (trace tree per instance)"},
		{"stdout", 1, "stdout (trace tree per instance)"},
		{" JSONL ", 1, "stdout (JSON lines)"},
		{"none", 0, "none (records are counted and discarded)"},
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

func TestFromEnvUnknown(t *testing.T) {
	t.Setenv(autoexport.EnvExporter, "kafka")
	exps, _, err := autoexport.FromEnv()
	require.ErrorContains(t, err, `AGENTTRACE_EXPORTER="kafka" is not one of stdout, jsonl, none`)
	require.Nil(t, exps)
}
