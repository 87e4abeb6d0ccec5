package prefactor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/agenttrace/agenttrace"
	"github.com/agenttrace/agenttrace/internal/bufpool"
)

// APIError is a response the API rejected for good: a 4xx other than 401,
// 403 and 429 (or an error output of the bulk endpoint).
type APIError struct {
	Op      string // the operation, e.g. "agent_spans/create"
	Status  int    // HTTP status; 0 for a bulk item
	Code    string // the API's error code, e.g. "validation_errors"
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := "prefactor: " + e.Op + " rejected"
	if e.Status != 0 {
		s += " (" + strconv.Itoa(e.Status) + ")"
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrIDMismatch is wrapped by the error reported when an answer gives an
// operation an ID other than the one the exporter chose for it: the answer
// is not trusted, the exporter's ID stays.
var ErrIDMismatch = fmt.Errorf("prefactor: the API answered another ID than the one chosen")

// opResult is the outcome of one operation the API answered: err is nil
// when accepted, an *APIError when refused for good.
type opResult struct {
	op  *op
	err error
}

// maxNotFound bounds the retries of a 404 on register, start or finish of
// an instance (the API may not see a just-registered instance yet).
const maxNotFound = 3

// send sends chunk: as a bulk request when bulk is on and the chunk has
// more than one operation, else the first operation alone. It returns the
// results of the operations answered, a prefix of chunk (possibly empty:
// the caller sends the rest again), and an error when the next operation
// cannot be sent (gave up, or the token was rejected).
func (e *Exporter) send(ctx context.Context, chunk []*op) ([]opResult, error) {
	if len(chunk) > 1 && !e.noBulk.Load() {
		return e.sendBulk(ctx, chunk)
	}
	return e.sendSingle(ctx, chunk[0])
}

func (e *Exporter) sendSingle(ctx context.Context, o *op) ([]opResult, error) {
	resp, err := e.do(ctx, http.MethodPost, o.path(e), o.single(e))
	if err != nil {
		return nil, err
	}
	if resp.status < 300 {
		e.accept(o, &resp.env)
		return []opResult{{op: o}}, nil
	}
	return e.judge(ctx, o, &resp.env, resp.status)
}

// judge decides about a refusal: a finish that conflicts is a success, a
// 404 on an instance operation is retried a few times, anything else is
// refused for good.
func (e *Exporter) judge(ctx context.Context, o *op, env *envelope, status int) ([]opResult, error) {
	conflict := status == http.StatusConflict || (status == 0 && env.Code == "invalid_action")
	switch {
	case conflict && o.kind == opFinishInstance,
		conflict && o.kind == opFinishSpan && (env.Code == "invalid_action" || env.Code == ""):
		e.accept(o, env)
		return []opResult{{op: o}}, nil
	case o.kind <= opFinishInstance && o.tries < maxNotFound &&
		(status == http.StatusNotFound || (status == 0 && env.Code == "not_found")):
		o.tries++
		e.stats.retries.Add(1)
		if err := e.sleep(ctx, e.backoff(o.tries-1), nil); err != nil {
			return nil, err
		}
		return nil, nil // sent again by the caller
	}
	// Copies, scrubbed: the error outlives the answer, whose strings these
	// are, and a gateway may echo the request's headers.
	return []opResult{{op: o, err: &APIError{Op: o.name(), Status: status, Code: e.scrubText(strings.Clone(clip(env.Code))),
		Message: e.scrubText(clipMsg(env.Message))}}}, nil
}

func clipMsg(s string) string {
	if len(s) > 300 {
		return strings.Clone(s[:300]) + "..."
	}
	return strings.Clone(s)
}

// accept records what an accepted operation's answer says: the ID the
// server chose, and a termination signal. An answer that changes an ID the
// exporter chose is reported (ErrIDMismatch) and not believed.
func (e *Exporter) accept(o *op, env *envelope) {
	e.stats.sent.Add(1)
	switch o.kind {
	case opRegister:
		if d := env.details(); d.ID != "" && e.trustID(o, o.inst, d.ID) {
			e.learnID(o.inst, d.ID)
		}
	case opCreateSpan, opFinishSpan:
		if o.kind == opCreateSpan {
			if d := env.details(); d.ID != "" && e.trustID(o, o.span, d.ID) {
				e.learnID(o.span, d.ID)
			}
		}
		if reason, ok := env.terminate(); ok {
			e.terminate(o.inst, reason)
		}
	}
}

// trustID reports whether the ID an answer gives for id may be learnt: it
// may when the exporter did not choose one; when it did, a different one
// is counted and reported.
func (e *Exporter) trustID(o *op, id agenttrace.ID, answered string) bool {
	if !o.chosen {
		return true
	}
	if !e.sameWireID(id, answered) {
		e.stats.mismatches.Add(1)
		e.report("id_mismatch", fmt.Errorf("%w: %s of %s answered %q for %s", ErrIDMismatch, o.name(), o.key(),
			clip(answered), e.instanceID(id)))
	}
	return false
}

// sameWireID reports whether s is the wire ID of id, without allocating.
func (e *Exporter) sameWireID(id agenttrace.ID, s string) bool {
	var buf [32]byte
	return string(e.appendWireID(buf[:0], id)) == s
}

// terminate cancels the instance's context, once.
func (e *Exporter) terminate(inst agenttrace.ID, reason string) {
	reason = strings.Clone(reason) // it outlives the answer it came in
	e.mu.Lock()
	delete(e.running, inst)
	e.mu.Unlock()
	if e.terminateFn != nil && e.terminateFn(inst, reason) {
		e.stats.terminations.Add(1)
		e.log().Info("prefactor: instance terminated by the API", slog.String("instance", inst.String()),
			slog.String("reason", e.scrubText(reason)))
	}
}

// bodyPool recycles bulk request bodies (the transport is done with a
// body when Do returns).
var bodyPool = bufpool.Pool{Size: 64 << 10, Max: 16 << 20}

func (e *Exporter) sendBulk(ctx context.Context, chunk []*op) ([]opResult, error) {
	bp := bodyPool.Get()
	body := append((*bp)[:0], `{"items":[`...)
	for i, o := range chunk {
		if i > 0 {
			body = append(body, ',')
		}
		body = o.item(e, body)
	}
	body = append(body, "]}"...)
	e.stats.bulkRequests.Add(1)
	resp, err := e.do(ctx, http.MethodPost, "/api/v1/bulk", body)
	*bp = body
	bodyPool.Put(bp)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.status == http.StatusNotFound || resp.status == http.StatusMethodNotAllowed || resp.status == http.StatusNotImplemented:
		if e.cfg.mode == ModeAuto {
			if e.noBulk.CompareAndSwap(false, true) {
				e.log().Info("prefactor: the API has no bulk endpoint; sending single requests")
			}
		}
		return e.sendSingle(ctx, chunk[0])
	case resp.status >= 300:
		// The request as a whole was refused: find the culprit one by one.
		return e.sendEach(ctx, chunk)
	}
	return e.bulkResults(ctx, chunk, &resp.env)
}

// bulkResults reads a bulk answer's outputs, in the chunk's order.
func (e *Exporter) bulkResults(ctx context.Context, chunk []*op, env *envelope) ([]opResult, error) {
	var out []opResult
	var kb [keyLen]byte
	for i, o := range chunk {
		item, ok := env.Outputs[string(o.appendKey(kb[:0]))] // a lookup that does not allocate
		if !ok {
			if i == 0 {
				return e.sendEach(ctx, chunk[:1]) // an answer without our item
			}
			return out, nil // not processed after an earlier error: sent again
		}
		if item == nil {
			item = &envelope{Code: "unknown", Message: "unreadable bulk output"}
		}
		if item.Status == "success" {
			e.accept(o, item)
			out = append(out, opResult{op: o})
			continue
		}
		res, err := e.judge(ctx, o, item, 0)
		out = append(out, res...)
		if err != nil || len(res) == 0 {
			return out, err
		}
		if res[0].err == nil {
			continue // a finish that was finished already
		}
		return out, nil // processing stopped at this error
	}
	return out, nil
}

// sendEach sends operations one by one.
func (e *Exporter) sendEach(ctx context.Context, chunk []*op) ([]opResult, error) {
	var out []opResult
	for _, o := range chunk {
		res, err := e.sendSingle(ctx, o)
		out = append(out, res...)
		if err != nil || len(res) == 0 {
			return out, err
		}
	}
	return out, nil
}
