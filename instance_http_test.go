package agenttrace_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/agenttracetest"
)

func TestInstanceHTTPOptions(t *testing.T) {
	rec := agenttracetest.NewRecorder()
	tr, err := agenttrace.New(agenttrace.WithExporter(rec))
	require.NoError(t, err)
	req := httptest.NewRequest("GET", "/chat", nil)
	req.RemoteAddr = "192.0.2.9:5555"
	req.Header.Set("User-Agent", "browser/1.0")
	req.Header.Set("X-Forwarded-For", "198.51.100.4, 10.0.0.1")
	_, run := tr.StartInstance(context.Background(), agenttrace.WithInstanceName("Refund for order 7"),
		agenttrace.FromHTTPRequest(req, false))
	run.End()
	_, proxied := tr.StartInstance(context.Background(), agenttrace.FromHTTPRequest(req, true))
	proxied.End()
	_, manual := tr.StartInstance(context.Background(), agenttrace.FromHTTPRequest(nil, true),
		agenttrace.WithIPAddress("2001:db8::1"), agenttrace.WithUserAgent("cli/2"))
	manual.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	var got []agenttrace.InstanceData
	for _, r := range rec.Records() {
		if r.Kind == agenttrace.InstanceStarted {
			got = append(got, *r.Instance)
		}
	}
	require.Len(t, got, 3)
	require.Equal(t, []string{"Refund for order 7", "192.0.2.9", "browser/1.0"}, []string{got[0].Name, got[0].IPAddress, got[0].UserAgent})
	require.Equal(t, "198.51.100.4", got[1].IPAddress, "the first forwarded address, behind a trusted proxy")
	require.Equal(t, []string{"2001:db8::1", "cli/2"}, []string{got[2].IPAddress, got[2].UserAgent})
}
