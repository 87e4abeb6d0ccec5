package prefactor_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/exporter/prefactor"
)

const secret = "pf-live-7b3c9e1d-very-secret"

func clearEnv(t *testing.T) {
	for _, k := range []string{prefactor.EnvAPIURL, prefactor.EnvAPIToken, prefactor.EnvAgentID,
		prefactor.EnvEnvironmentID, prefactor.EnvAgentName, prefactor.EnvAgentVersion} {
		t.Setenv(k, "")
	}
}

func TestNewValidates(t *testing.T) {
	clearEnv(t)
	for name, tc := range map[string]struct {
		opts []prefactor.Option
		want string
	}{
		"empty token":           {nil, "empty API token"},
		"blank token":           {[]prefactor.Option{prefactor.WithToken("  ")}, "empty API token"},
		"token newline":         {[]prefactor.Option{prefactor.WithToken(secret + "\n")}, "control character"},
		"token \\x01":           {[]prefactor.Option{prefactor.WithToken(secret + "\x01")}, "control character"},
		"token DEL":             {[]prefactor.Option{prefactor.WithToken("a\x7f" + secret)}, "control character"},
		"userinfo, bad":         {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("ftp://user:" + secret + "@x")}, "absolute http(s) URL"},
		"userinfo, unparseable": {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("http://" + secret + "@[::1")}, "absolute http(s) URL"},
		"relative URL":          {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("app.prefactorai.com")}, "absolute http(s) URL"},
		"bad scheme":            {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("ftp://x")}, "absolute http(s) URL"},
		"unparseable":           {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("http://[::1")}, "absolute http(s) URL"},
		"query":                 {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithURL("https://x/?a=1")}, "absolute http(s) URL"},
		"agent ID":              {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithAgentID("agent-1")}, "agent ID"},
		"environment ID":        {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithEnvironmentID("ENV")}, "environment ID"},
		"mode":                  {[]prefactor.Option{prefactor.WithToken(secret), prefactor.WithMode(prefactor.Mode(9))}, "unknown mode"},
	} {
		t.Run(name, func(t *testing.T) {
			exp, err := prefactor.New(tc.opts...)
			require.Nil(t, exp)
			require.ErrorIs(t, err, prefactor.ErrConfig)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), secret)
		})
	}
}

func TestNewFromEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv(prefactor.EnvAPIToken, secret)
	t.Setenv(prefactor.EnvAPIURL, "https://example.test/base/")
	exp, err := prefactor.New()
	require.NoError(t, err)
	require.Equal(t, "prefactor exporter (https://example.test/base, auto mode)", exp.String())
	require.Equal(t, "prefactor", exp.Name())
	require.NotContains(t, exp.String(), secret)

	// Options win over the environment.
	exp, err = prefactor.New(prefactor.WithURL("http://127.0.0.1:9"), prefactor.WithMode(prefactor.ModeSingle))
	require.NoError(t, err)
	require.Equal(t, "prefactor exporter (http://127.0.0.1:9, single mode)", exp.String())
	require.False(t, exp.Stats().Bulk)

	t.Setenv(prefactor.EnvAPIURL, "")
	exp, err = prefactor.New()
	require.NoError(t, err)
	require.Contains(t, exp.String(), prefactor.DefaultURL)
}
