package prefactortest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// answer is a response: a status and a JSON body, and the error code of an
// error answer.
type answer struct {
	status int
	code   string
	body   []byte
	buf    *bytes.Buffer // pooled buffer behind body, recycled once written
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type errorBody struct {
	Status  string              `json:"status"`
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors,omitempty"`
}

func errorAnswer(status int, code, msg string, fields map[string][]string) answer {
	b, _ := json.Marshal(errorBody{Status: "error", Code: code, Message: msg, Errors: fields})
	return answer{status: status, code: code, body: b}
}

// invalid is a 422 validation_errors answer about one field.
func invalid(field, msg string) answer {
	return errorAnswer(http.StatusUnprocessableEntity, "validation_errors", field+": "+msg, map[string][]string{field: {msg}})
}

func notFound(what string) answer {
	return errorAnswer(http.StatusNotFound, "not_found", what+" not found", nil)
}

func invalidAction(msg string) answer {
	return errorAnswer(http.StatusConflict, "invalid_action", msg, nil)
}

func badRequest(msg string) answer {
	return errorAnswer(http.StatusBadRequest, "bad_request", msg, nil)
}

// success builds {"status":"success","details":...[,"control":...]}.
func success(details []byte, control []byte) answer {
	b := make([]byte, 0, len(details)+len(control)+48)
	b = append(b, `{"status":"success","details":`...)
	b = append(b, details...)
	if control != nil {
		b = append(b, `,"control":`...)
		b = append(b, control...)
	}
	b = append(b, '}')
	return answer{status: http.StatusOK, body: b}
}

var pingAnswer = answer{status: http.StatusOK, body: []byte(`{"status":"success"}`)}

// route names the endpoint of a request and the ID in its path.
func route(method, path string) (Endpoint, string) {
	p, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return EndpointOther, ""
	}
	p = strings.TrimSuffix(p, "/")
	switch {
	case method == http.MethodGet && p == "ping":
		return EndpointPing, ""
	case method == http.MethodPost && p == "bulk":
		return EndpointBulk, ""
	case method == http.MethodPost && p == "agent_instance/register":
		return EndpointRegister, ""
	case method == http.MethodPost && p == "agent_spans":
		return EndpointCreateSpan, ""
	}
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 3 && parts[0] == "agent_instance" && method == http.MethodPost:
		switch parts[2] {
		case "start":
			return EndpointStart, parts[1]
		case "finish":
			return EndpointFinishInstance, parts[1]
		case "terminate":
			return EndpointTerminate, parts[1]
		}
	case len(parts) == 2 && parts[0] == "agent_instance" && method == http.MethodGet && parts[1] != "register":
		return EndpointGetInstance, parts[1]
	case len(parts) == 3 && parts[0] == "agent_spans" && parts[2] == "finish" && method == http.MethodPost:
		return EndpointFinishSpan, parts[1]
	}
	return EndpointOther, ""
}

const maxBodies = 10_000

// answers reports whether a fault replaces the answer (else it only
// delays it).
func (f Fault) answers() bool { return f.Status != 0 || f.Body != "" || f.Drop }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if n := r.ContentLength; n >= 0 && n <= 64<<20 {
		body = make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			body = body[:0]
		}
	} else {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<20))
	}
	ep, id := route(r.Method, r.URL.Path)

	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Endpoint: ep,
		Header: r.Header.Clone(), Body: body, At: time.Now()})
	if idx >= maxBodies {
		s.requests[idx-maxBodies].Body = nil
	}
	s.counts.Requests[ep]++
	latency := s.latency
	fault, hasFault := s.pickFault(ep)
	if hasFault {
		s.counts.Faults++
		s.requests[idx].Fault = true
	}
	s.mu.Unlock()

	if !s.wait(r, latency) {
		abort(w)
	}
	if hasFault && !fault.AfterProcessing {
		if fault.answers() {
			s.applyFault(w, r, idx, false, fault)
			return
		}
		if !s.wait(r, fault.Delay) { // slow, then processed normally
			abort(w)
		}
	}

	var ans answer
	replayed := false
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		ans = errorAnswer(http.StatusUnauthorized, "not_authenticated", "missing bearer token", nil)
	case auth != "Bearer "+s.cfg.token:
		ans = errorAnswer(http.StatusUnauthorized, "bad_authtoken", "Token invalid or expired", nil)
	default:
		ans, replayed = s.process(ep, id, body)
	}
	if hasFault && fault.AfterProcessing {
		if fault.answers() {
			s.recycle(ans)
			s.applyFault(w, r, idx, replayed, fault)
			return
		}
		if !s.wait(r, fault.Delay) {
			s.recycle(ans)
			s.record(idx, 0, replayed, "")
			abort(w)
		}
	}
	s.record(idx, ans.status, replayed, ans.code)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(ans.body)))
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
	s.recycle(ans)
}

// recycle returns a written (or discarded) bulk answer's buffer.
func (s *Server) recycle(ans answer) {
	if ans.buf != nil && ans.buf.Cap() <= 16<<20 {
		bufPool.Put(ans.buf)
	}
}

// record completes a request's record before its answer is sent, so that
// a client that has its answer finds it recorded.
func (s *Server) record(idx, status int, replayed bool, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &s.requests[idx]
	rec.Status, rec.Replayed = status, replayed
	if status >= 400 && code != "" {
		s.counts.Rejected[code]++
	}
}

// abort closes the connection without answering.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
	panic(http.ErrAbortHandler) // ends the handler; net/http does not log it
}

// wait sleeps d unless the request or the server ends first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

// pickFault chooses this request's fault; s.mu is held.
func (s *Server) pickFault(ep Endpoint) (Fault, bool) {
	if s.down || time.Now().Before(s.downUntil) {
		return Fault{Status: http.StatusServiceUnavailable}, true
	}
	for _, k := range [2]Endpoint{ep, EndpointAny} {
		if q := s.failNext[k]; len(q) > 0 {
			s.failNext[k] = q[1:]
			return q[0], true
		}
	}
	f := s.random
	if s.rng == nil || f.Status503+f.Status429+f.Drop+f.Slow <= 0 {
		return Fault{}, false
	}
	x := s.rng.Float64()
	switch {
	case x < f.Status503:
		return Fault{Status: http.StatusServiceUnavailable}, true
	case x < f.Status503+f.Status429:
		return Fault{Status: http.StatusTooManyRequests, RetryAfter: f.RetryAfter}, true
	case x < f.Status503+f.Status429+f.Drop:
		s.dropFlip = !s.dropFlip
		return Fault{Drop: true, AfterProcessing: s.dropFlip}, true
	case x < f.Status503+f.Status429+f.Drop+f.Slow:
		return Fault{Delay: f.SlowDelay, AfterProcessing: true}, true
	}
	return Fault{}, false
}

// applyFault answers with a fault (after its delay).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, idx int, replayed bool, f Fault) {
	if !s.wait(r, f.Delay) || f.Drop {
		s.record(idx, 0, replayed, "")
		abort(w)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := []byte(f.Body)
	if f.Body == "" {
		code := "unexpected"
		if status < 500 {
			code = "unknown"
		}
		body = errorAnswer(status, code, "injected fault: "+http.StatusText(status), nil).body
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/json"
	}
	s.record(idx, status, replayed, "")
	w.Header().Set("Content-Type", ct)
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
