package prefactortest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agenttrace/agenttrace/internal/prefactorapi"
)

// errorBody is the API's error envelope, for the fault and auth answers.
func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"error", code, msg})
	return b
}

// route names the endpoint of a request and the ID in its path: the
// endpoints prefactorapi serves but the fake server does not (lists) are
// EndpointOther.
func route(method, path string) (Endpoint, string) {
	ep, id := prefactorapi.Route(method, path)
	switch ep {
	case prefactorapi.EndpointListInstances, prefactorapi.EndpointListSpans:
		return EndpointOther, ""
	}
	return Endpoint(ep), id
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

	var ans prefactorapi.Answer
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		ans = prefactorapi.Answer{Status: http.StatusUnauthorized, Code: "not_authenticated", Body: errorBody("not_authenticated", "missing bearer token")}
	case auth != "Bearer "+s.cfg.token:
		ans = prefactorapi.Answer{Status: http.StatusUnauthorized, Code: "bad_authtoken", Body: errorBody("bad_authtoken", "Token invalid or expired")}
	case ep == EndpointBulk && s.cfg.noBulk, ep == EndpointOther:
		ans = prefactorapi.Answer{Status: http.StatusNotFound, Code: "not_found", Body: errorBody("not_found", "endpoint not found")}
	default:
		ans = s.api.Do(r.Context(), prefactorapi.Endpoint(ep), id, body, nil)
		s.countItems(ans)
	}
	if hasFault && fault.AfterProcessing {
		if fault.answers() {
			s.applyFault(w, r, idx, ans.Replayed, fault)
			return
		}
		if !s.wait(r, fault.Delay) {
			s.record(idx, 0, ans.Replayed, "")
			abort(w)
		}
	}
	s.record(idx, ans.Status, ans.Replayed, ans.Code)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(ans.Body)))
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Body)
}

// countItems counts a bulk answer's items and replays.
func (s *Server) countItems(ans prefactorapi.Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range ans.Items {
		s.counts.Items[Endpoint(ep)]++
	}
	if ans.ItemError != "" {
		s.counts.Rejected[ans.ItemError]++
	}
	if ans.Replayed {
		s.counts.Replays += replays(ans)
	}
}

// replays counts the replayed operations of an answer: 1 for a single
// request; for bulk, the outputs the API marked replayed are not
// itemised, so each replayed bulk answer counts its applied items that
// were replays.
func replays(ans prefactorapi.Answer) int {
	if len(ans.Items) == 0 {
		return 1
	}
	return ans.ReplayedItems
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
		body = errorBody(code, "injected fault: "+http.StatusText(status))
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
