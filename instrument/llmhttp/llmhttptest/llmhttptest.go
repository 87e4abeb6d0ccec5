// Package llmhttptest is a scripted fake LLM provider for tests of code
// that calls LLM APIs over HTTP: an httptest server that answers each
// request with the next Reply of its script, written as a real server
// would (in flushed pieces, cut mid-way, or held open), and records the
// requests it received.
//
//	srv := llmhttptest.NewServer(t, llmhttptest.Reply{ContentType: "text/event-stream", Body: sse})
//	client := openai.NewClient(option.WithBaseURL(srv.URL), ...)
package llmhttptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// ContentType defaults to application/json.
	ContentType string
	// Header holds extra response headers.
	Header map[string]string
	Body   []byte
	// Chunk, when > 0, writes the body in pieces of Chunk bytes, flushing
	// after each (a stream as the network delivers it).
	Chunk int
	// CutAfter, when > 0, writes only the first CutAfter bytes of the body
	// and then closes the connection (a stream cut mid-way).
	CutAfter int
	// HoldAfter, when > 0, writes the first HoldAfter bytes and then holds
	// the response open until the client goes away or the test ends.
	HoldAfter int
	// Delay, when > 0, holds the reply back that long before its headers
	// (a slow server); a client that goes away meanwhile gets nothing.
	Delay time.Duration
}

// Request is a request the server received.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// Server is a fake provider.
type Server struct {
	*httptest.Server
	done chan struct{}

	mu       sync.Mutex
	script   []Reply
	next     int
	requests []Request
}

// NewServer starts a server answering requests with the replies in order;
// requests beyond the script get its last reply again. It is closed when
// the test ends.
func NewServer(t testing.TB, script ...Reply) *Server {
	t.Helper()
	s := &Server{done: make(chan struct{}), script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Server.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: releases held replies
	return s
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SetScript replaces the script and starts it from its first reply.
func (s *Server) SetScript(script ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script, s.next = script, 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	var rep Reply
	if len(s.script) > 0 {
		rep = s.script[min(s.next, len(s.script)-1)]
		s.next++
	}
	s.mu.Unlock()

	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}
	ct := rep.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	b := rep.Body
	limit := len(b)
	if rep.CutAfter > 0 {
		limit = min(rep.CutAfter, len(b))
	}
	if rep.HoldAfter > 0 {
		limit = min(rep.HoldAfter, len(b))
	}
	write(w, b[:limit], rep.Chunk)
	switch {
	case rep.CutAfter > 0:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	case rep.HoldAfter > 0:
		select {
		case <-r.Context().Done():
		case <-s.done:
		case <-time.After(time.Minute): // bounds a hang only
		}
	}
}

func write(w http.ResponseWriter, b []byte, chunk int) {
	f, _ := w.(http.Flusher)
	if chunk <= 0 {
		_, _ = w.Write(b)
		if f != nil {
			f.Flush()
		}
		return
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		_, _ = w.Write(b[:n])
		if f != nil {
			f.Flush()
		}
		b = b[n:]
	}
}

// Fixture reads a file, failing the test if it cannot.
func Fixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("llmhttptest: %v", err)
	}
	return b
}
