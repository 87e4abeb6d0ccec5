package prefactor

import (
	"bytes"
	"encoding/json"

	"github.com/agenttrace/agenttrace/internal/jsonscan"
)

// envelope is the part of an API answer the exporter reads: the standard
// envelope of a single answer, or the outputs of a bulk answer, each an
// envelope too. It is decoded in one pass; the payloads an answer echoes
// are skipped.
type envelope struct {
	Status  string               `json:"status"`
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Details detailsID            `json:"details"`
	Control json.RawMessage      `json:"control"`
	Outputs map[string]*envelope `json:"outputs"`
}

type detailsID struct {
	ID                string  `json:"id"`
	Status            string  `json:"status"`
	TerminationReason *string `json:"termination_reason"`
}

// decodeEnvelope parses an answer; ok is false for a body that is not a
// JSON object of that shape.
func decodeEnvelope(b []byte) (env envelope, ok bool) {
	if env, ok := fastEnvelope(b); ok {
		return env, true
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, false
	}
	return env, bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
}

// details returns the id and status in an envelope's details.
func (env *envelope) details() detailsID { return env.Details }

// terminate reports a control signal: {"terminate": true, "reason": ...}.
func (env *envelope) terminate() (reason string, ok bool) {
	if len(env.Control) == 0 || env.Control[0] != '{' {
		return "", false
	}
	var c struct {
		Terminate any `json:"terminate"`
		Reason    any `json:"reason"`
	}
	if json.Unmarshal(env.Control, &c) != nil {
		return "", false
	}
	switch v := c.Terminate.(type) {
	case bool:
		ok = v
	case string:
		ok = v != ""
	case float64:
		ok = v != 0
	}
	if r, isStr := c.Reason.(string); isStr {
		reason = r
	}
	return reason, ok
}

// fastEnvelope decodes an answer with the scanner, for the common shapes:
// every known field once, with a plain string (ASCII, no escapes) or an
// object where one is expected; unknown fields are skipped (and
// validated). Anything else, including a key that matches a known one only
// without regard to case (encoding/json would take it), makes it give up,
// and decodeEnvelope falls back to encoding/json; a fuzz test checks that
// the two agree on everything fastEnvelope accepts.
func fastEnvelope(b []byte) (env envelope, ok bool) {
	s := &decoder{Scanner: jsonscan.NewScanner(b), items: jsonscan.Arena[envelope]{N: min(len(b)/512+1, 256)}}
	if !envelopeInto(s, &env) || !s.End() {
		return envelope{}, false
	}
	return env, true
}

// decoder is the scanner of an answer, with the envelopes of its bulk
// outputs. The strings it decodes are substrings of one copy of the body,
// so they stay valid when the body is recycled; what is kept longer than
// the answer is copied.
type decoder struct {
	jsonscan.Scanner
	items jsonscan.Arena[envelope]
}

var envelopeKeys = []string{"status", "code", "message", "details", "control", "outputs"}

var detailsKeys = []string{"id", "status", "termination_reason"}

// unknownKey reports whether k is none of keys, even without regard to
// case. The scanner's keys are ASCII, so ASCII folding is all there is.
func unknownKey(k []byte, keys []string) bool {
	for _, known := range keys {
		if len(k) == len(known) && asciiEqualFold(k, known) {
			return false
		}
	}
	return true
}

func asciiEqualFold(k []byte, known string) bool {
	for i := range k {
		a, b := k[i], known[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// plain reads a plain string into *p.
func plain(s *decoder, p *string) bool {
	v, ok := s.PlainString()
	*p = v
	return ok
}

func envelopeInto(s *decoder, env *envelope) bool {
	var seen uint8
	first := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	return s.Object(func(k []byte) bool {
		switch string(k) {
		case "status":
			return first(1) && plain(s, &env.Status)
		case "code":
			return first(2) && plain(s, &env.Code)
		case "message":
			return first(4) && plain(s, &env.Message)
		case "details":
			return first(8) && s.Next() == '{' && detailsInto(s, &env.Details)
		case "control":
			if !first(16) || s.Next() == 'n' { // null: encoding/json keeps it as "null"
				return false
			}
			var raw []byte
			if !s.Raw(&raw) {
				return false
			}
			env.Control = append([]byte(nil), raw...) // the body is recycled
			return true
		case "outputs":
			return first(32) && s.Next() == '{' && outputsInto(s, env)
		}
		return unknownKey(k, envelopeKeys) && s.Skip()
	})
}

func detailsInto(s *decoder, d *detailsID) bool {
	var seen uint8
	return s.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			if seen&1 != 0 {
				return false
			}
			seen |= 1
			return plain(s, &d.ID)
		case "status":
			if seen&2 != 0 {
				return false
			}
			seen |= 2
			return plain(s, &d.Status)
		case "termination_reason":
			if seen&4 != 0 {
				return false
			}
			seen |= 4
			if s.Next() == 'n' {
				d.TerminationReason = nil
				return s.Lit("null")
			}
			var r string
			if !plain(s, &r) {
				return false
			}
			d.TerminationReason = &r
			return true
		}
		return unknownKey(k, detailsKeys) && s.Skip()
	})
}

func outputsInto(s *decoder, env *envelope) bool {
	env.Outputs = make(map[string]*envelope, min(len(s.B)/512+1, 512))
	return s.Object(func(k []byte) bool {
		if _, dup := env.Outputs[string(k)]; dup || s.Next() != '{' {
			return false
		}
		item := s.items.New()
		if !envelopeInto(s, item) {
			return false
		}
		env.Outputs[s.String(k)] = item
		return true
	})
}
