package prefactor

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawServer answers every request on a loopback listener with head, then
// body, then closes: it can announce a Content-Length it does not send.
func rawServer(t *testing.T, head, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(c)
			_, _ = http.ReadRequest(r)
			_, _ = c.Write([]byte(head + body))
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func newTestExporter(t *testing.T, url string) *Exporter {
	t.Helper()
	e, err := New(WithURL(url), WithToken("test-token-0123456789"), WithPollInterval(-1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A lying Content-Length allocates nothing up front: an announced size
// over the limit is refused at once, and a smaller lie costs what arrives.
func TestAnswerBuffersGrowWithWhatArrives(t *testing.T) {
	for _, tc := range []struct {
		name string
		cl   int
		want string
	}{
		{"over the limit", 1 << 30, "answer too large"},
		{"under the limit", 60 << 20, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tc.cl), `{"status":`)
			e := newTestExporter(t, url)
			var err error
			n := allocated(func() {
				for range 4 {
					_, err = e.attempt(context.Background(), http.MethodGet, "/api/v1/ping", nil)
				}
			})
			require.ErrorContains(t, err, tc.want)
			require.Less(t, n, uint64(4<<20), "four answers of 10 bytes allocated %d bytes", n)
		})
	}
}

// Past smallAnswer bytes an answer needs the exporter's one large-answer
// token: the memory of answers in flight stays bounded, whatever the
// server sends.
func TestLargeAnswersTakeTurns(t *testing.T) {
	big := `{"status":"success","message":"` + strings.Repeat("x", 1<<20) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(big))
	}))
	t.Cleanup(srv.Close)
	e := newTestExporter(t, srv.URL)
	e.bigAnswer <- struct{}{} // another answer holds the token
	got := make(chan *response, 1)
	go func() {
		resp, err := e.attempt(context.Background(), http.MethodGet, "/api/v1/ping", nil)
		if err != nil {
			got <- nil
			return
		}
		got <- resp
	}()
	select {
	case <-got:
		t.Fatal("a large answer was read while another held the token")
	case <-time.After(50 * time.Millisecond):
	}
	<-e.bigAnswer // the other answer is done
	resp := <-got
	require.NotNil(t, resp)
	require.Len(t, resp.body, len(big))
	require.True(t, resp.big)
	e.doneWith(resp)
	require.Len(t, e.bigAnswer, 0, "the token is given back")
	small, err := e.attempt(context.Background(), http.MethodGet, "/x", nil)
	require.NoError(t, err)
	e.doneWith(small)
}
