package prefactortest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
)

// union is a request body or bulk item, decoded in one pass into the
// fields any operation may carry; which of them an operation allows is
// checked after.
type union struct {
	Type *string `json:"_type,omitempty"`
	Key  *string `json:"idempotency_key,omitempty"`
	// register
	ID                   *string         `json:"id,omitempty"`
	AgentID              *string         `json:"agent_id,omitempty"`
	EnvironmentID        *string         `json:"environment_id,omitempty"`
	Purpose              *string         `json:"purpose,omitempty"`
	AgentVersion         json.RawMessage `json:"agent_version,omitempty"`
	AgentSchemaVersion   json.RawMessage `json:"agent_schema_version,omitempty"`
	UpdateCurrentVersion *bool           `json:"update_current_version,omitempty"`
	// start, finish, terminate; the IDs are bulk fields (the path of a
	// single request)
	AgentInstanceID   *string         `json:"agent_instance_id,omitempty"`
	AgentSpanID       *string         `json:"agent_span_id,omitempty"`
	Timestamp         *string         `json:"timestamp,omitempty"`
	Status            *string         `json:"status,omitempty"`
	ResultPayload     json.RawMessage `json:"result_payload,omitempty"`
	SensitiveEncoding *bool           `json:"sensitive_encoding,omitempty"`
	Reason            *string         `json:"reason,omitempty"`
	// span create: details, or (bulk) its fields flat on the item
	Details      *spanDetails    `json:"details,omitempty"`
	SchemaName   *string         `json:"schema_name,omitempty"`
	Payload      json.RawMessage `json:"payload,omitempty"`
	ParentSpanID *string         `json:"parent_span_id,omitempty"`
	StartedAt    *string         `json:"started_at,omitempty"`
	FinishedAt   *string         `json:"finished_at,omitempty"`

	raw []byte // the body of a single request
}

// spanDetails are the details of a span create.
type spanDetails struct {
	AgentInstanceID   *string         `json:"agent_instance_id,omitempty"`
	SchemaName        *string         `json:"schema_name,omitempty"`
	Status            *string         `json:"status,omitempty"`
	Payload           json.RawMessage `json:"payload,omitempty"`
	ResultPayload     json.RawMessage `json:"result_payload,omitempty"`
	ID                *string         `json:"id,omitempty"`
	ParentSpanID      *string         `json:"parent_span_id,omitempty"`
	StartedAt         *string         `json:"started_at,omitempty"`
	FinishedAt        *string         `json:"finished_at,omitempty"`
	SensitiveEncoding *bool           `json:"sensitive_encoding,omitempty"`
	IdempotencyKey    *string         `json:"idempotency_key,omitempty"`
}

// isObject reports whether b holds a JSON object (by its first byte).
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// decodeStrict decodes the JSON object b into v, refusing unknown fields
// and trailing data.
func decodeStrict(b []byte, v any) error {
	if !isObject(b) {
		return errNotObject
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimLeft(b[d.InputOffset():], " \t\r\n")) > 0 {
		return errTrailing
	}
	return nil
}

var (
	errNotObject = errors.New("the body must be a JSON object")
	errTrailing  = errors.New("trailing data after the JSON object")
)

// decodeError turns a decoding error into a 400 bad_request (not a JSON
// object, unknown field) or a 422 validation_errors (a field of the wrong
// type).
func decodeError(err error, prefix string) answer {
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = prefix + strings.Trim(f, `"`)
		return errorAnswer(http.StatusBadRequest, "bad_request", "unknown field "+f, map[string][]string{f: {"unknown field"}})
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalid(prefix+te.Field, "must be "+jsonKind(te.Type.Kind().String())+", not "+te.Value)
	}
	if errors.Is(err, errNotObject) || errors.As(err, &te) {
		return badRequest("the body must be a JSON object")
	}
	return badRequest("malformed JSON: " + msg)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + k
}

// normalizeCreate moves the fields of a span create given flat on a bulk
// item into its details.
func (u *union) normalizeCreate() {
	if u.Details != nil {
		return
	}
	if u.AgentInstanceID == nil && u.SchemaName == nil && u.Status == nil && u.Payload == nil && u.ID == nil &&
		u.ParentSpanID == nil && u.StartedAt == nil && u.FinishedAt == nil && u.ResultPayload == nil && u.SensitiveEncoding == nil {
		return
	}
	u.Details = &spanDetails{AgentInstanceID: u.AgentInstanceID, SchemaName: u.SchemaName, Status: u.Status,
		Payload: u.Payload, ResultPayload: u.ResultPayload, ID: u.ID, ParentSpanID: u.ParentSpanID,
		StartedAt: u.StartedAt, FinishedAt: u.FinishedAt, SensitiveEncoding: u.SensitiveEncoding}
	u.AgentInstanceID, u.SchemaName, u.Status, u.Payload, u.ResultPayload, u.ID = nil, nil, nil, nil, nil, nil
	u.ParentSpanID, u.StartedAt, u.FinishedAt, u.SensitiveEncoding = nil, nil, nil, nil
}

// opHash identifies an operation for idempotency: its endpoint, the ID of
// its path, and its fields but the keys. A single request and the bulk
// item of the same operation hash alike.
func opHash(ep Endpoint, id string, u *union) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	h.WriteString(string(ep))
	h.WriteByte(0)
	h.WriteString(id)
	ps := func(s *string) {
		if s == nil {
			h.WriteByte(0)
			return
		}
		h.WriteByte(1)
		h.WriteString(*s)
		h.WriteByte(0)
	}
	pr := func(r json.RawMessage) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(r)))
		h.Write(n[:])
		h.Write(r)
	}
	pb := func(v *bool) {
		switch {
		case v == nil:
			h.WriteByte(0)
		case *v:
			h.WriteByte(1)
		default:
			h.WriteByte(2)
		}
	}
	for _, s := range [...]*string{u.ID, u.AgentID, u.EnvironmentID, u.Purpose, u.AgentInstanceID, u.AgentSpanID,
		u.Timestamp, u.Status, u.Reason, u.SchemaName, u.ParentSpanID, u.StartedAt, u.FinishedAt} {
		ps(s)
	}
	pr(u.AgentVersion)
	pr(u.AgentSchemaVersion)
	pr(u.ResultPayload)
	pr(u.Payload)
	pb(u.UpdateCurrentVersion)
	pb(u.SensitiveEncoding)
	if d := u.Details; d != nil {
		h.WriteByte(1)
		for _, s := range [...]*string{d.AgentInstanceID, d.SchemaName, d.Status, d.ID, d.ParentSpanID, d.StartedAt, d.FinishedAt} {
			ps(s)
		}
		pr(d.Payload)
		pr(d.ResultPayload)
		pb(d.SensitiveEncoding)
	}
	return h.Sum64()
}

// hashSeed seeds the operation hashes (64 bits: two different operations
// under one key pass for the same with a probability of 2^-64).
var hashSeed = maphash.MakeSeed()

// process runs an authenticated request.
func (s *Server) process(ep Endpoint, id string, body []byte) (answer, bool) {
	switch ep {
	case EndpointPing:
		return pingAnswer, false
	case EndpointGetInstance:
		s.mu.Lock()
		defer s.mu.Unlock()
		in, ok := s.instances[id]
		if !ok {
			return notFound("agent instance"), false
		}
		return success(s.instanceJSON(in), nil), false
	case EndpointBulk:
		if s.cfg.noBulk {
			return notFound("endpoint"), false
		}
		return s.bulk(body)
	case EndpointOther:
		return notFound("endpoint"), false
	}
	if ep == EndpointTerminate && len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	u := union{raw: body}
	if !fastRequest(body, &u) {
		u = union{raw: body}
		if err := decodeStrict(body, &u); err != nil {
			return decodeError(err, ""), false
		}
	}
	key := u.Key
	if ep == EndpointCreateSpan && u.Details != nil && u.Details.IdempotencyKey != nil {
		if key != nil && *key != *u.Details.IdempotencyKey {
			return invalid("idempotency_key", "differs from details.idempotency_key"), false
		}
		key = u.Details.IdempotencyKey
	}
	if ep == EndpointTerminate && key == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.run(ep, id, &u, false), false
	}
	if key == nil || *key == "" || len(*key) > 64 {
		return invalid("idempotency_key", "required: a string of 1 to 64 characters"), false
	}
	return s.idempotent(*key, opHash(ep, id, &u), func() answer { return s.run(ep, id, &u, false) })
}

// idempotent runs apply (with s.mu held) under an idempotency key: a
// stored answer for the same operation is replayed; the same key for
// another operation is refused.
func (s *Server) idempotent(key string, h uint64, apply func() answer) (answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.idem[key]; ok {
		if e.hash != h {
			return errorAnswer(http.StatusConflict, "idempotency_key_already_used",
				"idempotency key "+strconv.Quote(key)+" was used for another request", nil), false
		}
		s.counts.Replays++
		ans := answer{status: e.status, body: e.body}
		if e.status >= 400 {
			ans.code = errorCode(e.body)
		}
		return ans, true
	}
	ans := apply()
	if ans.status < 500 && ans.status != http.StatusNotFound {
		s.idem[keep(key)] = idemEntry{hash: h, status: ans.status, body: ans.body}
	}
	return ans, false
}

func errorCode(body []byte) string {
	var e struct{ Code string }
	_ = json.Unmarshal(body, &e)
	return e.Code
}

// bulkItems decodes the items of a bulk request. An item that does not
// decode gets its error in errs (its key still read, if it has one).
func bulkItems(body []byte) (items []union, errs []answer, bad answer, ok bool) {
	if items, ok := fastBulk(body); ok {
		return items, nil, answer{}, true
	}
	var req struct {
		Items []union `json:"items"`
	}
	err := decodeStrict(body, &req)
	if err == nil {
		return req.Items, nil, answer{}, true
	}
	// Find the items at fault, one by one.
	var raw struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := decodeStrict(body, &raw); err != nil {
		return nil, nil, decodeError(err, ""), false
	}
	items, errs = make([]union, len(raw.Items)), make([]answer, len(raw.Items))
	for i, r := range raw.Items {
		if !isObject(r) {
			return nil, nil, invalid("items", "item "+strconv.Itoa(i)+" is not an object"), false
		}
		if err := decodeStrict(r, &items[i]); err != nil {
			errs[i] = decodeError(err, "")
			var k struct {
				Key *string `json:"idempotency_key"`
			}
			_ = json.Unmarshal(r, &k)
			items[i] = union{Key: k.Key}
		}
	}
	if raw.Items == nil {
		items = nil
	}
	return items, errs, answer{}, true
}

// bulk runs a bulk request.
func (s *Server) bulk(body []byte) (answer, bool) {
	items, itemErrs, bad, ok := bulkItems(body)
	if !ok {
		return bad, false
	}
	return s.runBulk(items, itemErrs)
}

// runBulk runs the decoded items of a bulk request.
func (s *Server) runBulk(items []union, itemErrs []answer) (answer, bool) {
	if items == nil {
		return invalid("items", "required"), false
	}
	if len(items) == 0 {
		return invalid("items", "at least one item"), false
	}
	seen := make(map[string]struct{}, len(items))
	for i := range items {
		k := items[i].Key
		if k == nil || len(*k) < 8 || len(*k) > 64 {
			return invalid("items", "item "+strconv.Itoa(i)+": idempotency_key must have 8 to 64 characters"), false
		}
		if _, dup := seen[*k]; dup {
			return invalid("items", "duplicate idempotency_key "+strconv.Quote(*k)), false
		}
		seen[*k] = struct{}{}
	}
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	out.WriteString(`{"status":"success","outputs":{`)
	replayed := false
	counted := make([]Endpoint, 0, len(items))
	for i := range items {
		it := &items[i]
		var ans answer
		if itemErrs != nil && itemErrs[i].status != 0 {
			ans = itemErrs[i]
		} else if ep, id, ok := bulkRoute(it); !ok {
			typ := ""
			if it.Type != nil {
				typ = *it.Type
			}
			ans = invalid("_type", "unknown item type "+strconv.Quote(typ))
		} else {
			var rep bool
			ans, rep = s.idempotent(*it.Key, opHash(ep, id, it), func() answer { return s.run(ep, id, it, true) })
			replayed = replayed || rep
			counted = append(counted, ep)
		}
		if i > 0 {
			out.WriteByte(',')
		}
		writeKey(out, *it.Key)
		out.WriteByte(':')
		out.Write(ans.body)
		if ans.status >= 300 {
			s.mu.Lock()
			s.counts.Rejected[ans.code]++
			s.mu.Unlock()
			break
		}
	}
	out.WriteString("}}")
	s.mu.Lock()
	for _, ep := range counted {
		s.counts.Items[ep]++
	}
	s.mu.Unlock()
	return answer{status: http.StatusOK, body: out.Bytes(), buf: out}, replayed
}

// writeKey writes a key as a JSON string.
func writeKey(out *bytes.Buffer, k string) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(k)
			out.Write(b)
			return
		}
	}
	out.WriteByte('"')
	out.WriteString(k)
	out.WriteByte('"')
}

// bulkRoute maps a bulk item to the endpoint it stands for and the ID of
// that endpoint's path, which it takes out of the item's fields.
func bulkRoute(it *union) (Endpoint, string, bool) {
	if it.Type == nil {
		return "", "", false
	}
	var ep Endpoint
	var idField **string
	switch *it.Type {
	case "agent_instances/register":
		ep = EndpointRegister
	case "agent_instances/start":
		ep, idField = EndpointStart, &it.AgentInstanceID
	case "agent_instances/finish":
		ep, idField = EndpointFinishInstance, &it.AgentInstanceID
	case "agent_spans/create":
		ep = EndpointCreateSpan
		it.normalizeCreate()
	case "agent_spans/finish":
		ep, idField = EndpointFinishSpan, &it.AgentSpanID
	default:
		return "", "", false
	}
	it.Type = nil
	id := ""
	if idField != nil && *idField != nil {
		id = **idField
		*idField = nil
	}
	return ep, id, true
}
