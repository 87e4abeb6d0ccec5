package prefactortest

import "github.com/agenttrace/agenttrace/internal/jsonscan"

// A fast decoder for the bodies the server reads most: bulk requests and
// single requests, into union. It handles the common shapes only and
// gives up (returning false) on anything else: unknown or repeated
// fields, strings with escapes or non-ASCII bytes where a Go string is
// wanted, a value of an unexpected type, or malformed JSON. The caller
// then decodes with encoding/json, which gives the precise error, so the
// fast path must only agree with it on what it accepts (a fuzz test
// checks this).

// scan is the shared scanner with the decoders of this package's bodies.
// The strings it reads are substrings of one copy of the body, and the
// *string fields it sets point into an arena, so that decoding an item
// allocates next to nothing. What the server stores from a body is copied
// or canonical (see keep), so that it does not pin the body.
type scan struct {
	jsonscan.Scanner
	strs    jsonscan.Arena[string]
	details jsonscan.Arena[spanDetails]
}

// newScan returns a scanner of b, its arenas sized from b's length: an
// item has a few hundred bytes and a dozen strings.
func newScan(b []byte) *scan {
	return &scan{Scanner: jsonscan.NewScanner(b), strs: jsonscan.Arena[string]{N: min(len(b)/32+4, 256)},
		details: jsonscan.Arena[spanDetails]{N: min(len(b)/256+1, 64)}}
}

// StrPtr reads a string or null, without allocating (but for a new arena
// chunk).
func (s *scan) StrPtr(p **string) bool {
	if s.Next() == 'n' {
		*p = nil
		return s.Lit("null")
	}
	v, ok := s.PlainString()
	if !ok {
		return false
	}
	*p = s.strs.New()
	**p = v
	return true
}

// once marks field bit f seen; false if it was already.
func once(seen *uint64, f uint) bool {
	if *seen&(1<<f) != 0 {
		return false
	}
	*seen |= 1 << f
	return true
}

// fastUnion reads a request object into u.
func (s *scan) fastUnion(u *union) bool {
	var seen uint64
	return s.Object(func(k []byte) bool {
		switch string(k) {
		case "_type":
			return once(&seen, 0) && s.StrPtr(&u.Type)
		case "idempotency_key":
			return once(&seen, 1) && s.StrPtr(&u.Key)
		case "id":
			return once(&seen, 2) && s.StrPtr(&u.ID)
		case "agent_id":
			return once(&seen, 3) && s.StrPtr(&u.AgentID)
		case "environment_id":
			return once(&seen, 4) && s.StrPtr(&u.EnvironmentID)
		case "purpose":
			return once(&seen, 5) && s.StrPtr(&u.Purpose)
		case "agent_version":
			return once(&seen, 6) && s.Raw((*[]byte)(&u.AgentVersion))
		case "agent_schema_version":
			return once(&seen, 7) && s.Raw((*[]byte)(&u.AgentSchemaVersion))
		case "update_current_version":
			return once(&seen, 8) && s.BoolPtr(&u.UpdateCurrentVersion)
		case "agent_instance_id":
			return once(&seen, 9) && s.StrPtr(&u.AgentInstanceID)
		case "agent_span_id":
			return once(&seen, 10) && s.StrPtr(&u.AgentSpanID)
		case "timestamp":
			return once(&seen, 11) && s.StrPtr(&u.Timestamp)
		case "status":
			return once(&seen, 12) && s.StrPtr(&u.Status)
		case "result_payload":
			return once(&seen, 13) && s.Raw((*[]byte)(&u.ResultPayload))
		case "sensitive_encoding":
			return once(&seen, 14) && s.BoolPtr(&u.SensitiveEncoding)
		case "reason":
			return once(&seen, 15) && s.StrPtr(&u.Reason)
		case "details":
			if !once(&seen, 16) {
				return false
			}
			if s.Next() == 'n' {
				u.Details = nil
				return s.Lit("null")
			}
			u.Details = s.details.New()
			return s.fastDetails(u.Details)
		case "schema_name":
			return once(&seen, 17) && s.StrPtr(&u.SchemaName)
		case "payload":
			return once(&seen, 18) && s.Raw((*[]byte)(&u.Payload))
		case "parent_span_id":
			return once(&seen, 19) && s.StrPtr(&u.ParentSpanID)
		case "started_at":
			return once(&seen, 20) && s.StrPtr(&u.StartedAt)
		case "finished_at":
			return once(&seen, 21) && s.StrPtr(&u.FinishedAt)
		}
		return false
	})
}

// fastDetails reads span create details.
func (s *scan) fastDetails(d *spanDetails) bool {
	var seen uint64
	return s.Object(func(k []byte) bool {
		switch string(k) {
		case "agent_instance_id":
			return once(&seen, 0) && s.StrPtr(&d.AgentInstanceID)
		case "schema_name":
			return once(&seen, 1) && s.StrPtr(&d.SchemaName)
		case "status":
			return once(&seen, 2) && s.StrPtr(&d.Status)
		case "payload":
			return once(&seen, 3) && s.Raw((*[]byte)(&d.Payload))
		case "result_payload":
			return once(&seen, 4) && s.Raw((*[]byte)(&d.ResultPayload))
		case "id":
			return once(&seen, 5) && s.StrPtr(&d.ID)
		case "parent_span_id":
			return once(&seen, 6) && s.StrPtr(&d.ParentSpanID)
		case "started_at":
			return once(&seen, 7) && s.StrPtr(&d.StartedAt)
		case "finished_at":
			return once(&seen, 8) && s.StrPtr(&d.FinishedAt)
		case "sensitive_encoding":
			return once(&seen, 9) && s.BoolPtr(&d.SensitiveEncoding)
		case "idempotency_key":
			return once(&seen, 10) && s.StrPtr(&d.IdempotencyKey)
		}
		return false
	})
}

// fastRequest decodes a single request body into u.
func fastRequest(b []byte, u *union) bool {
	s := newScan(b)
	return s.fastUnion(u) && s.End()
}

// fastBulk decodes a bulk body; items is nil when "items" is absent or
// null.
func fastBulk(b []byte) ([]union, bool) { return newScan(b).bulk() }

// bulk decodes a bulk body.
func (s *scan) bulk() ([]union, bool) {
	b := s.B
	var items []union
	seen := false
	ok := s.Object(func(k []byte) bool {
		if string(k) != "items" || seen {
			return false
		}
		seen = true
		switch s.Next() {
		case 'n':
			return s.Lit("null")
		case '[':
		default:
			return false
		}
		s.I++
		items = make([]union, 0, len(b)/256+1)
		if s.Next() == ']' {
			s.I++
			return true
		}
		for {
			items = append(items, union{})
			if !s.fastUnion(&items[len(items)-1]) {
				return false
			}
			switch s.Next() {
			case ',':
				s.I++
			case ']':
				s.I++
				return true
			default:
				return false
			}
		}
	})
	if !ok || !s.End() {
		return nil, false
	}
	return items, true
}
