package prefactorapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"sync"
)

// bulk answers POST /api/v1/bulk: {"items":[{"_type":...,
// "idempotency_key":...,...}]}. The request as a whole is checked first
// (at least one item, each an object with a key of 8 to 64 characters,
// the keys unique): a failure there is the answer and nothing runs. Then
// the items run in order, each like its single request under its own key,
// until the first that fails, which is the last output; the ones before it
// stay applied. The answer, {"status":"success","outputs":{key: output}},
// is sent after the items' changes committed, in one transaction: should
// the store fail, nothing is kept and the answer is 500. The items are
// decoded before the transaction (decodeBulkItems); in it, the
// idempotency records and spans they name are read first, in two lookups
// (bulkTx).
func (a *API) bulk(ctx context.Context, body []byte) Answer {
	var req BulkRequest
	if err := a.cfg.Codec.decodeStrict(body, &req); err != nil {
		return errAnswer(decodeError(err, ""))
	}
	if req.Items == nil {
		return errAnswer(invalid("items", "required"))
	}
	if len(req.Items) == 0 {
		return errAnswer(invalid("items", "at least one item"))
	}
	// Every item is decoded before the transaction; an item's decoding
	// error is its answer when its turn comes.
	heads, ops, errs := a.cfg.Codec.decodeBulkItems(req.Items)
	keys := make([]string, len(req.Items))
	seen := make(map[string]struct{}, len(req.Items))
	var spanIDs []string
	for i, raw := range req.Items {
		if !isObject(raw) {
			return errAnswer(invalid("items", "item "+strconv.Itoa(i)+" is not an object"))
		}
		k := heads[i].IdempotencyKey
		if k == nil || len(*k) < 8 || len(*k) > 64 {
			return errAnswer(invalid("items", "item "+strconv.Itoa(i)+": idempotency_key must have 8 to 64 characters"))
		}
		if _, dup := seen[*k]; dup {
			return errAnswer(invalid("items", "duplicate idempotency_key "+strconv.Quote(*k)))
		}
		seen[*k] = struct{}{}
		keys[i] = *k
		if ops[i] != nil {
			spanIDs = ops[i].spanIDs(spanIDs)
		}
	}
	var out bytes.Buffer
	var result Answer
	err := a.update(ctx, func(tx Tx) error {
		out.Reset()
		result = Answer{Status: http.StatusOK}
		btx, err := prefetch(tx, keys, spanIDs)
		if err != nil {
			return err
		}
		out.WriteString(`{"status":"success","outputs":{`)
		for i, o := range ops {
			var ans Answer
			if errs[i] != nil {
				ans = errAnswer(errs[i])
			} else {
				var err error
				if ans, err = a.idempotent(btx, o); err != nil {
					return err
				}
				result.Items = append(result.Items, o.ep)
				if ans.Replayed {
					result.Replayed = true
					result.ReplayedItems++
				}
			}
			if i > 0 {
				out.WriteByte(',')
			}
			k, _ := a.cfg.Codec.marshal(keys[i])
			out.Write(k)
			out.WriteByte(':')
			out.Write(ans.Body)
			if ans.Status >= 300 {
				result.ItemError = ans.Code
				break
			}
		}
		out.WriteString("}}")
		return nil
	})
	if err != nil {
		return storeFailure(err)
	}
	result.Body = out.Bytes()
	return result
}

// parallelItems is the number of items from which a bulk request's items
// are decoded (and hashed) by several goroutines, up to GOMAXPROCS: they
// do not depend on one another, and a request of hundreds takes
// milliseconds to decode.
const parallelItems = 64

// decodeBulkItems decodes the items that are objects (see decodeBulkItem)
// and computes their operations' hashes.
func (c Codec) decodeBulkItems(items []json.RawMessage) ([]bulkHead, []*operation, []*Error) {
	heads := make([]bulkHead, len(items))
	ops := make([]*operation, len(items))
	errs := make([]*Error, len(items))
	decode := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if !isObject(items[i]) {
				continue
			}
			heads[i], ops[i], errs[i] = c.decodeBulkItem(items[i])
			if ops[i] != nil && ops[i].key != nil {
				ops[i].hash()
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(items)/(parallelItems/2))
	if len(items) < parallelItems || workers < 2 {
		decode(0, len(items))
		return heads, ops, errs
	}
	var wg sync.WaitGroup
	per := (len(items) + workers - 1) / workers
	for lo := per; lo < len(items); lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			decode(lo, hi)
		}(lo, min(lo+per, len(items)))
	}
	decode(0, min(per, len(items)))
	wg.Wait()
	return heads, ops, errs
}

// decodeBulkItem decodes a bulk item: its head (read leniently: the
// request's checks need every item's key) and its operation, or the error
// that is its answer. An item that starts with its _type, as this
// project's exporter writes them, is decoded once, strictly, as that type,
// and taken so when the _type decoded is that type: it then has no field
// that type has not, and the head is the type's own fields. Any other item
// is decoded in two steps, the head, then the item as its type.
func (c Codec) decodeBulkItem(raw []byte) (bulkHead, *operation, *Error) {
	if t := leadingType(raw); t != "" {
		o, e, typ := c.decodeItemAs(t, raw)
		if e == nil && typ != nil && *typ == t {
			return bulkHead{Type: typ, IdempotencyKey: o.key}, o, nil
		}
	}
	var h bulkHead
	_ = json.Unmarshal(raw, &h)
	o, e := c.decodeItem(h.Type, raw)
	return h, o, e
}

// leadingType returns the _type an item's text begins with, as in
// {"_type":"agent_spans/create",...}; "" when it begins otherwise. It
// only picks the type to try first: the decoding decides.
func leadingType(raw []byte) string {
	const p = `{"_type":"`
	b := bytes.TrimLeft(raw, " \t\r\n")
	if !bytes.HasPrefix(b, []byte(p)) {
		return ""
	}
	b = b[len(p):]
	end := bytes.IndexByte(b, '"')
	if end < 0 || bytes.IndexByte(b[:end], '\\') >= 0 {
		return ""
	}
	return string(b[:end])
}

// decodeItem decodes a bulk item by its _type into its single-request form.
// The item types of instance start and finish and of span finish are not
// documented by the API; they follow the documented
// "agent_instances/register" and "agent_spans/create", with the ID of the
// single request's path as a field.
func (c Codec) decodeItem(typ *string, raw []byte) (*operation, *Error) {
	t := ""
	if typ != nil {
		t = *typ
	}
	o, e, _ := c.decodeItemAs(t, raw)
	return o, e
}

// decodeItemAs decodes a bulk item as one of type t; decoded is the _type
// the item holds.
func (c Codec) decodeItemAs(t string, raw []byte) (o *operation, e *Error, decoded *string) {
	o = &operation{bulk: true, codec: c}
	var err error
	switch t {
	case "agent_instances/register":
		var it bulkRegister
		err = c.decodeStrict(raw, &it)
		decoded = it.Type
		r := it.RegisterRequest
		o.ep, o.key, r.IdempotencyKey, o.req = EndpointRegister, r.IdempotencyKey, nil, &r
	case "agent_instances/start":
		var it bulkStart
		err = c.decodeStrict(raw, &it)
		decoded = it.Type
		r := it.StartRequest
		o.ep, o.id, o.key, r.IdempotencyKey, o.req = EndpointStart, deref(it.AgentInstanceID), r.IdempotencyKey, nil, &r
	case "agent_instances/finish":
		var it bulkFinishInstance
		err = c.decodeStrict(raw, &it)
		decoded = it.Type
		r := it.FinishInstanceRequest
		o.ep, o.id, o.key, r.IdempotencyKey, o.req = EndpointFinishInstance, deref(it.AgentInstanceID), r.IdempotencyKey, nil, &r
	case "agent_spans/create":
		var it bulkCreateSpan
		err = c.decodeStrict(raw, &it)
		decoded = it.Type
		d := it.Details
		flat := it.SpanDetailsInput
		flat.IdempotencyKey = nil
		if d == nil && !isZeroDetails(&flat) {
			d = &flat
		} else if d != nil && !isZeroDetails(&flat) {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			e := badRequest("agent_spans/create: with details, the span's fields are unknown fields of the item")
			e.Fields = map[string][]string{}
			for k := range m {
				if k != "_type" && k != "idempotency_key" && k != "details" {
					e.Fields[k] = []string{"unknown field"}
				}
			}
			return nil, e, nil
		}
		if d != nil {
			d.IdempotencyKey = nil
		}
		o.ep, o.key, o.req = EndpointCreateSpan, it.IdempotencyKey, &CreateSpanRequest{Details: d}
	case "agent_spans/finish":
		var it bulkFinishSpan
		err = c.decodeStrict(raw, &it)
		decoded = it.Type
		r := it.FinishSpanRequest
		o.ep, o.id, o.key, r.IdempotencyKey, o.req = EndpointFinishSpan, deref(it.AgentSpanID), r.IdempotencyKey, nil, &r
	default:
		return nil, invalid("_type", "unknown item type "+strconv.Quote(t)), nil
	}
	if err != nil {
		return nil, decodeError(err, ""), nil
	}
	return o, nil, decoded
}

// spanIDs appends the span IDs the operation looks up: a created span's
// own and its parent's, a finished span's.
func (o *operation) spanIDs(ids []string) []string {
	switch r := o.req.(type) {
	case *CreateSpanRequest:
		if d := r.Details; d != nil {
			for _, p := range []*string{d.ID, d.ParentSpanID} {
				if p != nil && ValidPFID(*p) {
					ids = append(ids, *p)
				}
			}
		}
	case *FinishSpanRequest:
		if ValidPFID(o.id) {
			ids = append(ids, o.id)
		}
	}
	return ids
}

// bulkTx is the transaction of a bulk request: the idempotency records and
// spans its items name are read at its start, two lookups in all, and kept
// with the ones the items write, to answer the items' lookups of them.
type bulkTx struct {
	Tx
	// idem and spans hold an entry for every key and ID read or written;
	// nil for one that is not stored.
	idem  map[string]*IdempotencyRecord
	spans map[string]*SpanRecord
}

func prefetch(tx Tx, keys, spanIDs []string) (*bulkTx, error) {
	b := &bulkTx{Tx: tx, idem: make(map[string]*IdempotencyRecord, len(keys)), spans: make(map[string]*SpanRecord, len(spanIDs))}
	recs, err := tx.Idempotencies(keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if r, ok := recs[k]; ok {
			b.idem[k] = &r
		} else {
			b.idem[k] = nil
		}
	}
	if len(spanIDs) > 0 {
		spans, err := tx.Spans(spanIDs)
		if err != nil {
			return nil, err
		}
		for _, id := range spanIDs {
			if r, ok := spans[id]; ok {
				b.spans[id] = &r
			} else {
				b.spans[id] = nil
			}
		}
	}
	return b, nil
}

func (b *bulkTx) Idempotency(key string) (IdempotencyRecord, bool, error) {
	if r, ok := b.idem[key]; ok {
		if r == nil {
			return IdempotencyRecord{}, false, nil
		}
		return *r, true, nil
	}
	return b.Tx.Idempotency(key)
}

func (b *bulkTx) PutIdempotency(r IdempotencyRecord) error {
	if err := b.Tx.PutIdempotency(r); err != nil {
		return err
	}
	b.idem[r.Key] = &r
	return nil
}

func (b *bulkTx) Span(id string) (SpanRecord, bool, error) {
	if r, ok := b.spans[id]; ok {
		if r == nil {
			return SpanRecord{}, false, nil
		}
		return *r, true, nil
	}
	return b.Tx.Span(id)
}

func (b *bulkTx) PutSpan(r SpanRecord) error {
	if err := b.Tx.PutSpan(r); err != nil {
		return err
	}
	b.spans[r.ID] = &r
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isZeroDetails(d *SpanDetailsInput) bool {
	return d.AgentInstanceID == nil && d.SchemaName == nil && d.Status == nil && d.Payload == nil && d.ResultPayload == nil &&
		d.ID == nil && d.ParentSpanID == nil && d.StartedAt == nil && d.FinishedAt == nil && d.SensitiveEncoding == nil
}
