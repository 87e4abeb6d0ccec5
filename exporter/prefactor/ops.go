package prefactor

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/exporter/prefactor/internal/wiretime"
	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

type opKind uint8

const (
	opRegister opKind = iota
	opStartInstance
	opFinishInstance
	opCreateSpan
	opFinishSpan
)

// bulkType is the bulk endpoint's _type of each operation.
var bulkType = [...]string{
	opRegister:       "agent_instances/register",
	opStartInstance:  "agent_instances/start",
	opFinishInstance: "agent_instances/finish",
	opCreateSpan:     "agent_spans/create",
	opFinishSpan:     "agent_spans/finish",
}

// keyPrefix makes idempotency keys: prefix + the ULID of the instance or
// span. A key is the same on every attempt of its operation, and every
// operation has its own.
var keyPrefix = [...]string{
	opRegister:       "ir-",
	opStartInstance:  "is-",
	opFinishInstance: "if-",
	opCreateSpan:     "sc-",
	opFinishSpan:     "sf-",
}

// op is one API operation.
type op struct {
	kind opKind
	// refs are the records the operation completes: its own, and for the
	// create of a span that was deferred, the span's start record.
	refs [2]*recRef
	// deadline is when the operation gives up: Retry.Deadline after it
	// reached its lane.
	deadline time.Time
	next     *op // in a deferred span's waiting list
	inst     agenttrace.ID
	span     agenttrace.ID // span ops
	// pendingCreate marks the create of a span that is then finished as
	// cancelled (its key differs from an ordinary create's).
	pendingCreate bool
	status        string
	idata         *agenttrace.InstanceData
	sdata         *agenttrace.SpanData
	tries         int // not_found retries
	// chosen: the last body sent carried an ID the exporter chose, which
	// an answer must not change.
	chosen bool
	// own holds the recRef of the record whose first operation this is.
	own recRef
}

func (o *op) key() string { return string(o.appendKey(make([]byte, 0, keyLen))) }

// keyLen is the length of an idempotency key: a prefix and a ULID.
const keyLen = 3 + 26

// appendKey appends the operation's idempotency key (see key).
func (o *op) appendKey(b []byte) []byte {
	id := o.inst
	if o.kind >= opCreateSpan {
		id = o.span
	}
	k := keyPrefix[o.kind]
	if o.pendingCreate {
		k = "sp-"
	}
	b = append(b, k...)
	if id.IsZero() {
		return b
	}
	var text [26]byte
	_ = id.ULID().MarshalTextTo(text[:]) // cannot fail: the buffer is 26 bytes
	return append(b, text[:]...)
}

// name is the operation for errors and stats.
func (o *op) name() string { return bulkType[o.kind] }

// path returns the single-request path.
func (o *op) path(e *Exporter) string {
	switch o.kind {
	case opRegister:
		return "/api/v1/agent_instance/register"
	case opStartInstance:
		return "/api/v1/agent_instance/" + e.instanceID(o.inst) + "/start"
	case opFinishInstance:
		return "/api/v1/agent_instance/" + e.instanceID(o.inst) + "/finish"
	case opCreateSpan:
		return "/api/v1/agent_spans"
	default:
		return "/api/v1/agent_spans/" + e.spanID(o.span) + "/finish"
	}
}

// fields appends the operation's body fields, without braces and without
// the idempotency key. For bulk items it adds the path's ID. Each
// operation's body has a function of its own.
func (o *op) fields(e *Exporter, b []byte, bulk bool) []byte {
	w := fieldWriter{b: b}
	switch o.kind {
	case opRegister:
		o.registerBody(e, &w)
	case opStartInstance:
		if bulk {
			w.str("agent_instance_id", e.instanceID(o.inst))
		}
		w.time("timestamp", o.idata.StartedAt)
	case opFinishInstance:
		if bulk {
			w.str("agent_instance_id", e.instanceID(o.inst))
		}
		w.str("status", o.status)
		w.time("timestamp", o.idata.EndedAt)
	case opCreateSpan:
		o.createSpanBody(e, &w)
	case opFinishSpan:
		o.finishSpanBody(e, &w, bulk)
	}
	return w.b
}

// registerBody writes an instance registration: its ID when the exporter
// can choose it, the agent, environment, agent version and schema version.
func (o *op) registerBody(e *Exporter, w *fieldWriter) {
	d := o.idata
	o.chosen = e.partitionKnown()
	if o.chosen {
		w.str("id", e.instanceID(o.inst))
	}
	agentID := e.cfg.agentID
	if agentID == "" && ValidPFID(d.Agent.ID) {
		agentID = d.Agent.ID
	}
	if agentID != "" {
		w.str("agent_id", agentID)
	}
	if e.cfg.envID != "" {
		w.str("environment_id", e.cfg.envID)
	}
	name, version := e.agentVersion(d.Agent)
	w.key("agent_version")
	w.b = append(w.b, '{')
	inner := fieldWriter{b: w.b}
	inner.str("external_identifier", version)
	inner.str("name", name)
	w.b = append(inner.b, '}')
	if d.Schema != nil {
		w.key("agent_schema_version")
		w.b = append(w.b, e.schemaJSON(d.Schema)...)
	}
	if d.Purpose != "" {
		w.str("purpose", string(d.Purpose))
	}
	w.key("update_current_version")
	w.b = strconv.AppendBool(w.b, !e.cfg.noUpdateVersion)
}

// createSpanBody writes a span creation: its details, with the ID the
// exporter chose, the parent, and the times and result its status calls
// for.
func (o *op) createSpanBody(e *Exporter, w *fieldWriter) {
	d := o.sdata
	w.key("details")
	w.b = append(w.b, '{')
	in := fieldWriter{b: w.b}
	o.chosen = true
	in.id("id", e, o.span)
	in.id("agent_instance_id", e, o.inst)
	in.str("schema_name", d.Type)
	in.str("status", o.status)
	in.key("payload")
	if d.ParentID.IsZero() && o.idata != nil {
		in.b = appendRootPayload(in.b, d.Payload, o.idata)
	} else {
		in.b = appendObject(in.b, d.Payload, d, false)
	}
	in.key("parent_span_id")
	if d.ParentID.IsZero() {
		in.b = append(in.b, "null"...)
	} else {
		in.b = e.appendWireID(append(in.b, '"'), d.ParentID)
		in.b = append(in.b, '"')
	}
	switch o.status {
	case "pending":
	case "active":
		in.time("started_at", startedAt(d))
	default:
		in.time("started_at", startedAt(d))
		in.time("finished_at", d.EndedAt)
		in.key("result_payload")
		in.b = appendObject(in.b, d.Result, d, true)
	}
	if d.Sensitive != nil {
		in.key("sensitive_encoding")
		in.b = strconv.AppendBool(in.b, *d.Sensitive)
	}
	w.b = append(in.b, '}')
}

// finishSpanBody writes a span finish: the time, status and result.
func (o *op) finishSpanBody(e *Exporter, w *fieldWriter, bulk bool) {
	d := o.sdata
	if bulk {
		w.str("agent_span_id", e.spanID(o.span))
	}
	w.time("timestamp", d.EndedAt)
	w.str("status", o.status)
	w.key("result_payload")
	w.b = appendObject(w.b, d.Result, d, true)
	if d.Sensitive != nil {
		w.key("sensitive_encoding")
		w.b = strconv.AppendBool(w.b, *d.Sensitive)
	}
}

// startedAt is when the span became active, or when it was created if it
// never did.
func startedAt(d *agenttrace.SpanData) time.Time {
	if d.StartedAt.IsZero() {
		return d.CreatedAt
	}
	return d.StartedAt
}

// single returns the body of the operation's own request.
func (o *op) single(e *Exporter) []byte {
	b := append(make([]byte, 0, 256+len(o.payloadSize())), '{')
	b = o.fields(e, b, false)
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"idempotency_key":`...)
	b = appendString(b, o.key())
	return append(b, '}')
}

// item appends the operation as a bulk item.
func (o *op) item(e *Exporter, b []byte) []byte {
	b = append(b, `{"_type":`...)
	b = appendString(b, bulkType[o.kind])
	b = append(b, `,"idempotency_key":"`...)
	b = append(o.appendKey(b), '"') // plain ASCII: nothing to escape
	n := len(b)
	b = append(b, ',')
	if b2 := o.fields(e, b, true); len(b2) > n+1 {
		b = b2
	} else {
		b = b[:n]
	}
	return append(b, '}')
}

// payloadSize is a rough size hint for buffers.
func (o *op) payloadSize() []byte {
	if o.sdata == nil {
		return nil
	}
	if len(o.sdata.Payload) > len(o.sdata.Result) {
		return o.sdata.Payload
	}
	return o.sdata.Result
}

// appendObject appends a payload object, {} if there is none. For a
// result it adds what the span carries beside it, unless the object has
// those keys already: "error" ({error_type, message}) for a failed or
// cancelled span, "token_usage" and "cost".
func appendObject(b []byte, obj json.RawMessage, d *agenttrace.SpanData, result bool) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		obj = json.RawMessage("{}")
	}
	if !result {
		return append(b, obj...)
	}
	var extra []byte
	add := func(key string, v any) {
		if v == nil || bytes.Contains(obj, []byte(`"`+key+`"`)) {
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return
		}
		if len(extra) > 0 {
			extra = append(extra, ',')
		}
		extra = appendString(extra, key)
		extra = append(extra, ':')
		extra = append(extra, enc...)
	}
	if d.Error != nil {
		add("error", d.Error)
	}
	if d.Usage != nil && !bytes.Contains(obj, []byte(`"token_usage"`)) {
		add("token_usage", d.Usage)
	}
	if d.Cost != nil {
		add("cost", d.Cost)
	}
	if ttft := d.TimeToFirstToken(); ttft > 0 {
		add("ttft_ms", float64(ttft.Microseconds())/1000)
	}
	if len(extra) == 0 {
		return append(b, obj...)
	}
	b = append(b, '{')
	b = append(b, extra...)
	if rest := bytes.TrimSpace(obj[1 : len(obj)-1]); len(rest) > 0 {
		b = append(b, ',')
		b = append(b, rest...)
	}
	return append(b, '}')
}

// instanceInfo is what the API has no instance field for, carried in an
// "instance" object of an instance's root spans' payload: the run's name,
// user, group, channel, session, client address and user agent (the local
// server's run listing reads it there).
type instanceInfo struct {
	Name      string `json:"name,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	GroupID   string `json:"group_id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// appendRootPayload appends a root span's payload with an "instance"
// object of the instance's identifiers added, unless the payload has that
// key already or the instance has none of them.
func appendRootPayload(b []byte, obj json.RawMessage, d *agenttrace.InstanceData) []byte {
	info := instanceInfo{Name: d.Name, UserID: d.UserID, GroupID: d.GroupID, Channel: d.Channel,
		SessionID: d.SessionID, IPAddress: d.IPAddress, UserAgent: d.UserAgent}
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		obj = json.RawMessage("{}")
	}
	if info == (instanceInfo{}) || bytes.Contains(obj, []byte(`"instance"`)) {
		return append(b, obj...)
	}
	enc, err := json.Marshal(info)
	if err != nil {
		return append(b, obj...)
	}
	b = append(b, `{"instance":`...)
	b = append(b, enc...)
	if rest := bytes.TrimSpace(obj[1 : len(obj)-1]); len(rest) > 0 {
		b = append(b, ',')
		b = append(b, rest...)
	}
	return append(b, '}')
}

// fieldWriter appends "key":value pairs separated by commas.
type fieldWriter struct {
	b []byte
	n int
}

func (w *fieldWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

// id writes the wire ID of an instance or span.
func (w *fieldWriter) id(k string, e *Exporter, id agenttrace.ID) {
	w.key(k)
	w.b = e.appendWireID(append(w.b, '"'), id)
	w.b = append(w.b, '"')
}

func (w *fieldWriter) str(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
}

// time writes a UTC timestamp with milliseconds, or null if t is zero.
func (w *fieldWriter) time(k string, t time.Time) {
	w.key(k)
	w.b = wiretime.AppendJSON(w.b, t, 3)
}

// appendString appends s as a JSON string, replacing invalid UTF-8.
func appendString(b []byte, s string) []byte { return jsonesc.AppendString(b, s) }
