// Package prefactorapi is the Prefactor v1 protocol, written to be read as
// its reference (../../shared reference: prefactor-api.md) and run by both
// the agenttrace server and the fake server prefactortest.
//
// Requests: one type per endpoint (RegisterRequest, StartRequest,
// FinishInstanceRequest, TerminateRequest, CreateSpanRequest,
// FinishSpanRequest, BulkRequest, and the agents' CreateAgentRequest,
// UpdateAgentRequest, AgentActionRequest), decoded with encoding/json,
// refusing unknown fields and trailing data. Answers: InstanceDetails,
// SpanDetails, AgentDetails in {"status":"success","details":...}, lists in
// {"status":"success","summaries":[...],"pagination":...}, errors as
// {"status":"error","code":...,"message":...,"errors":{field:[...]}}.
//
// Checks, in this order, each request failing at the first step that
// fails and storing nothing:
//
//   - the body: not a JSON object, malformed, or trailing data: 400
//     bad_request; an unknown field: 400 bad_request naming it in errors; a
//     field of the wrong type: 422 validation_errors;
//   - the idempotency_key: 1 to 64 characters on every mutating request
//     (bulk items: 8 to 64, unique in the request), at the top level or,
//     for span create, inside details (not two different ones): else 422;
//   - fields: required ones, enums (statuses, purpose, data risk values),
//     PFIDs (^[0-7][0-9abcdefghjkmnpqrstvwxyz]{31}$), RFC 3339 timestamps,
//     objects where objects are due, client-chosen IDs in the account
//     partition: 422 validation_errors with every field at fault;
//   - references: the instance or span of the path, or a span's instance:
//     404 not_found; a parent span not in the same instance, a span type
//     not in the instance's schema version: 422;
//   - state: instances pending -> active (start) -> complete | failed
//     (finish), pending -> cancelled, pending | active -> terminated
//     (terminate); spans are created in any state but cancelled (a result
//     payload and finished_at only when finished, no started_at when
//     pending) and finished active -> complete | failed, pending ->
//     cancelled; anything else, a second finish included, is 409
//     invalid_action. A terminated instance still takes spans, and span
//     answers then carry "control":{"terminate":true,"reason":...}.
//
// Idempotency: under each key the API stores a SHA-256 of the operation
// (the endpoint, the path's ID and the request without its key, as
// canonical JSON: a bulk item and the single request of the same
// operation hash alike) with its answer, in the transaction that applies
// it. The same key and operation replays the stored answer and applies
// nothing; the same key with another operation is 409
// idempotency_key_already_used. Errors are stored too, except 404 (the
// resource may appear later, and clients retry under the same key) and
// 5xx.
//
// Bulk: see (*API).bulk: checked as a whole, then items in order until
// the first failure (the last output); outputs keyed by idempotency key.
//
// Storage: a Store (MemoryStore here; SQLite and PostgreSQL in
// cmd/agenttrace) keeps records; every request is one Store.Update (or
// View), and the API does every check before its first write, so a
// refused operation leaves nothing behind. storetest.Run is the suite
// every Store passes.
package prefactorapi
