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

// answer is a response: a status and a JSON body.
type answer struct {
	status int
	body   []byte
	buf    *bytes.Buffer // pooled buffer behind body, recycled once written
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func errorAnswer(status int, code, msg string, fields map[string][]string) answer {
	m := map[string]any{"status": "error", "code": code, "message": msg}
	if fields != nil {
		m["errors"] = fields
	}
	b, _ := json.Marshal(m)
	return answer{status: status, body: b}
}

func invalid(field, msg string) answer {
	return errorAnswer(http.StatusUnprocessableEntity, "validation_errors", field+": "+msg, map[string][]string{field: {msg}})
}

// route names the endpoint of a request and the ID in its path.
func route(method, path string) (Endpoint, string) {
	p, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return EndpointOther, ""
	}
	parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
	switch {
	case method == http.MethodGet && p == "ping":
		return EndpointPing, ""
	case method == http.MethodPost && p == "bulk":
		return EndpointBulk, ""
	case method == http.MethodPost && p == "agent_instance/register":
		return EndpointRegister, ""
	case method == http.MethodPost && p == "agent_spans":
		return EndpointCreateSpan, ""
	case len(parts) == 3 && parts[0] == "agent_instance" && method == http.MethodPost:
		switch parts[2] {
		case "start":
			return EndpointStart, parts[1]
		case "finish":
			return EndpointFinishInstance, parts[1]
		case "terminate":
			return EndpointTerminate, parts[1]
		}
	case len(parts) == 2 && parts[0] == "agent_instance" && method == http.MethodGet:
		return EndpointGetInstance, parts[1]
	case len(parts) == 3 && parts[0] == "agent_spans" && parts[2] == "finish" && method == http.MethodPost:
		return EndpointFinishSpan, parts[1]
	}
	return EndpointOther, ""
}

const maxBodies = 10_000

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if n := r.ContentLength; n >= 0 && n <= 64<<20 {
		body = make([]byte, n)
		_, _ = io.ReadFull(r.Body, body)
	} else {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<20))
	}
	ep, id := route(r.Method, r.URL.Path)
	rec := Request{Method: r.Method, Path: r.URL.Path, Endpoint: ep, Header: r.Header.Clone(), Body: body, At: time.Now()}

	s.mu.Lock()
	s.counts.Requests[ep]++
	latency := s.latency
	fault, hasFault := s.pickFault(ep)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		if n := len(s.requests); n > maxBodies {
			s.requests[n-maxBodies-1].Body = nil
		}
		if rec.Fault {
			s.counts.Faults++
		}
		s.mu.Unlock()
	}()

	if !s.wait(r, latency) {
		return
	}
	if hasFault && !fault.AfterProcessing {
		rec.Fault = true
		if fault.Status == 0 && fault.Body == "" && !fault.Drop {
			if !s.wait(r, fault.Delay) { // slow, then processed normally
				return
			}
		} else {
			rec.Status = s.applyFault(w, r, fault)
			return
		}
	}

	var ans answer
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		ans = errorAnswer(http.StatusUnauthorized, "not_authenticated", "missing bearer token", nil)
	case auth != "Bearer "+s.cfg.token:
		ans = errorAnswer(http.StatusUnauthorized, "bad_authtoken", "Token invalid or expired", nil)
	default:
		ans, rec.Replayed = s.process(ep, id, r.URL.Path, body)
	}
	if hasFault && fault.AfterProcessing {
		rec.Fault = true
		if fault.Status == 0 && fault.Body == "" && !fault.Drop {
			if !s.wait(r, fault.Delay) {
				return
			}
		} else {
			rec.Status = s.applyFault(w, r, fault)
			return
		}
	}
	if ans.status >= 400 {
		var e struct{ Code string }
		_ = json.Unmarshal(ans.body, &e)
		s.mu.Lock()
		s.counts.Rejected[e.Code]++
		s.mu.Unlock()
	}
	rec.Status = ans.status
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
	if ans.buf != nil && ans.buf.Cap() <= 16<<20 {
		bufPool.Put(ans.buf) // written: the bulk answer is not kept
	}
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
	now := time.Now()
	if s.down || now.Before(s.downUntil) {
		return Fault{Status: http.StatusServiceUnavailable}, true
	}
	for _, k := range []Endpoint{ep, EndpointAny} {
		if q := s.failNext[k]; len(q) > 0 {
			s.failNext[k] = q[1:]
			return q[0], true
		}
	}
	f := s.random
	if s.rng == nil || f.Status503+f.Status429+f.Drop+f.Slow == 0 {
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

// applyFault answers with a fault and returns the status sent (0 when the
// connection was dropped).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) int {
	if f.Delay > 0 && !s.wait(r, f.Delay) {
		return 0
	}
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return 0
			}
		}
		panic(http.ErrAbortHandler)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := []byte(f.Body)
	if f.Body == "" {
		body = errorAnswer(status, "unexpected", "injected fault", nil).body
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// process runs an authenticated request.
func (s *Server) process(ep Endpoint, id, path string, body []byte) (answer, bool) {
	switch ep {
	case EndpointPing:
		return answer{status: 200, body: []byte(`{"status":"success"}`)}, false
	case EndpointGetInstance:
		s.mu.Lock()
		defer s.mu.Unlock()
		in, ok := s.instances[id]
		if !ok {
			return errorAnswer(404, "not_found", "agent instance not found", nil), false
		}
		return success(s.instanceJSON(in), nil), false
	case EndpointBulk:
		if s.cfg.noBulk {
			return errorAnswer(404, "not_found", "no such endpoint", nil), false
		}
		return s.bulk(body)
	case EndpointOther:
		return errorAnswer(404, "not_found", "no such endpoint", nil), false
	case EndpointTerminate:
		var req struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(body, &req)
		if err := s.Terminate(id, req.Reason); err != nil {
			return errorAnswer(409, "invalid_action", err.Error(), nil), false
		}
		return answer{status: 200, body: []byte(`{"status":"success"}`)}, false
	}
	if ep == EndpointCreateSpan || ep == EndpointFinishSpan {
		var u union
		if err := decodeStrict(body, &u); err != nil {
			return decodeError(err), false
		}
		key := u.Key
		if key == nil && u.Details != nil {
			key = u.Details.IdempotencyKey
		}
		if key == nil || *key == "" || len(*key) > 64 {
			return invalid("idempotency_key", "required: a string of 1 to 64 characters"), false
		}
		return s.idempotent(*key, requestHash(ep, path, body), func() answer {
			if ep == EndpointCreateSpan {
				return s.createSpanTyped(&u)
			}
			return s.finishSpanTyped(id, &u, false)
		})
	}
	obj, ans, ok := decodeObject(body)
	if !ok {
		return ans, false
	}
	key, ans, ok := idemKey(obj, ep)
	if !ok {
		return ans, false
	}
	return s.idempotent(key, requestHash(ep, path, body), func() answer { return s.apply(ep, id, obj) })
}

// idempotent runs apply (with s.mu held) under an idempotency key: a
// stored answer for the same request is replayed; the same key for another
// request is refused.
func (s *Server) idempotent(key string, h [32]byte, apply func() answer) (answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.idem[key]; ok {
		if e.hash != h {
			return errorAnswer(409, "idempotency_key_already_used", "idempotency key already used for another request", nil), false
		}
		s.counts.Replays++
		return answer{status: e.status, body: e.body}, true
	}
	ans := apply()
	if ans.status < 500 {
		s.idem[key] = idemEntry{hash: h, status: ans.status, body: ans.body}
	}
	return ans, false
}

// decodeObject parses a JSON object, keeping its values raw.
func decodeObject(b []byte) (map[string]json.RawMessage, answer, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, errorAnswer(400, "bad_request", "the body must be a JSON object", nil), false
	}
	return obj, answer{}, true
}

// idemKey returns a request's idempotency key (top level, or in details
// for span create).
func idemKey(obj map[string]json.RawMessage, ep Endpoint) (string, answer, bool) {
	raw, ok := obj["idempotency_key"]
	if !ok && ep == EndpointCreateSpan {
		if d, isObj := objectField(obj, "details"); isObj {
			raw, ok = d["idempotency_key"]
		}
	}
	var key string
	if !ok || json.Unmarshal(raw, &key) != nil || key == "" || len(key) > 64 {
		return "", invalid("idempotency_key", "required: a string of 1 to 64 characters"), false
	}
	return key, answer{}, true
}

func objectField(obj map[string]json.RawMessage, k string) (map[string]json.RawMessage, bool) {
	raw, ok := obj[k]
	if !ok {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

// success builds {"status":"success","details":...[,"control":...]}.
func success(details []byte, control []byte) answer {
	var b bytes.Buffer
	b.Grow(len(details) + 64)
	b.WriteString(`{"status":"success","details":`)
	b.Write(details)
	if control != nil {
		b.WriteString(`,"control":`)
		b.Write(control)
	}
	b.WriteByte('}')
	return answer{status: 200, body: b.Bytes()}
}

// bulk runs a bulk request.
func (s *Server) bulk(body []byte) (answer, bool) {
	var req struct {
		Items []union `json:"items"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return decodeError(err), false
	}
	if len(req.Items) == 0 {
		return invalid("items", "at least one item"), false
	}
	seen := make(map[string]bool, len(req.Items))
	for i := range req.Items {
		it := &req.Items[i]
		if it.Key == nil || len(*it.Key) < 8 || len(*it.Key) > 64 {
			return invalid("items", "item "+strconv.Itoa(i)+": idempotency_key must have 8 to 64 characters"), false
		}
		if seen[*it.Key] {
			return invalid("items", "duplicate idempotency_key "+*it.Key), false
		}
		seen[*it.Key] = true
	}
	items := req.Items
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	out.WriteString(`{"status":"success","outputs":{`)
	replayed := false
	for i := range items {
		it := &items[i]
		var ans answer
		typ := ""
		if it.Type != nil {
			typ = *it.Type
		}
		ep, id, ok := bulkRoute(typ, it)
		if !ok {
			ans = invalid("_type", "unknown item type "+strconv.Quote(typ))
		} else {
			var rep bool
			ans, rep = s.idempotent(*it.Key, it.hash(ep), func() answer {
				switch ep {
				case EndpointCreateSpan:
					return s.createSpanTyped(it)
				case EndpointFinishSpan:
					return s.finishSpanTyped(id, it, true)
				}
				return s.apply(ep, id, it.asMap())
			})
			replayed = replayed || rep
		}
		if i > 0 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(*it.Key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(ans.body)
		if ans.status >= 300 {
			var e struct{ Code string }
			_ = json.Unmarshal(ans.body, &e)
			s.mu.Lock()
			s.counts.Rejected[e.Code]++
			s.mu.Unlock()
			break
		}
	}
	out.WriteString("}}")
	return answer{status: 200, body: out.Bytes(), buf: out}, replayed
}

// bulkRoute maps a bulk item to the endpoint it stands for.
func bulkRoute(typ string, it *union) (Endpoint, string, bool) {
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	switch typ {
	case "agent_instances/register":
		return EndpointRegister, "", true
	case "agent_instances/start":
		return EndpointStart, str(it.AgentInstanceID), true
	case "agent_instances/finish":
		return EndpointFinishInstance, str(it.AgentInstanceID), true
	case "agent_spans/create":
		return EndpointCreateSpan, "", true
	case "agent_spans/finish":
		return EndpointFinishSpan, str(it.AgentSpanID), true
	}
	return "", "", false
}
