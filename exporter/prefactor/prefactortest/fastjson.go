package prefactortest

// A fast decoder for the bodies the server reads most: bulk requests and
// single requests, into union. It handles the common shapes only and
// gives up (returning false) on anything else: unknown or repeated
// fields, strings with escapes or non-ASCII bytes where a Go string is
// wanted, a value of an unexpected type, or malformed JSON. The caller
// then decodes with encoding/json, which gives the precise error, so the
// fast path must only agree with it on what it accepts (a fuzz test
// checks this).

type scan struct {
	b []byte
	i int
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte (0 at the end).
func (s *scan) next() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scan) lit(l string) bool {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return false
	}
	s.i += len(l)
	return true
}

// plainString reads a string without escapes, of printable ASCII.
func (s *scan) plainString() (string, bool) {
	if s.next() != '"' {
		return "", false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return string(s.b[start:j]), true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return "", false
		}
	}
	return "", false
}

// key reads an object key and its colon, without allocating.
func (s *scan) key() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			k := s.b[start:j]
			s.i = j + 1
			if s.next() != ':' {
				return nil, false
			}
			s.i++
			return k, true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	return nil, false
}

// strPtr reads a string or null.
func (s *scan) strPtr(p **string) bool {
	if s.next() == 'n' {
		*p = nil
		return s.lit("null")
	}
	v, ok := s.plainString()
	if !ok {
		return false
	}
	*p = &v
	return true
}

var trueV, falseV = true, false

// boolPtr reads a boolean or null.
func (s *scan) boolPtr(p **bool) bool {
	switch s.next() {
	case 'n':
		*p = nil
		return s.lit("null")
	case 't':
		v := trueV
		*p = &v
		return s.lit("true")
	case 'f':
		v := falseV
		*p = &v
		return s.lit("false")
	}
	return false
}

// raw reads any JSON value and returns its bytes.
func (s *scan) raw(p *[]byte) bool {
	s.ws()
	start := s.i
	if !s.skip() {
		return false
	}
	*p = s.b[start:s.i]
	return true
}

// skip skips a valid JSON value (the grammar of encoding/json's scanner),
// nested at most 64 deep.
func (s *scan) skip() bool {
	var stack uint64 // bit 0: the innermost container is an object
	depth := 0
	for {
		switch c := s.next(); c {
		case '{':
			s.i++
			if s.next() == '}' {
				s.i++
				break
			}
			if depth == 64 || !s.memberKey() {
				return false
			}
			stack, depth = stack<<1|1, depth+1
			continue
		case '[':
			s.i++
			if s.next() == ']' {
				s.i++
				break
			}
			if depth == 64 {
				return false
			}
			stack, depth = stack<<1, depth+1
			continue
		case '"':
			if !s.anyString() {
				return false
			}
		case 't':
			if !s.lit("true") {
				return false
			}
		case 'f':
			if !s.lit("false") {
				return false
			}
		case 'n':
			if !s.lit("null") {
				return false
			}
		default:
			if !s.number() {
				return false
			}
		}
		// After a value: close containers, or go on to the next element.
		for {
			if depth == 0 {
				return true
			}
			c, obj := s.next(), stack&1 == 1
			if c == ',' {
				s.i++
				if obj && !s.memberKey() {
					return false
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				s.i++
				stack, depth = stack>>1, depth-1
				continue
			}
			return false
		}
	}
}

// memberKey skips an object member's key and colon.
func (s *scan) memberKey() bool {
	if !s.anyString() || s.next() != ':' {
		return false
	}
	s.i++
	return true
}

// anyString skips a valid JSON string (escapes checked).
func (s *scan) anyString() bool {
	if s.next() != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(s.b[k]) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number skips a JSON number.
func (s *scan) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return true
}

// object reads an object, calling member for each key (positioned at the
// value); member reads the value or returns false.
func (s *scan) object(member func(k []byte) bool) bool {
	if s.next() != '{' {
		return false
	}
	s.i++
	if s.next() == '}' {
		s.i++
		return true
	}
	for {
		k, ok := s.key()
		if !ok || !member(k) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
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
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "_type":
			return once(&seen, 0) && s.strPtr(&u.Type)
		case "idempotency_key":
			return once(&seen, 1) && s.strPtr(&u.Key)
		case "id":
			return once(&seen, 2) && s.strPtr(&u.ID)
		case "agent_id":
			return once(&seen, 3) && s.strPtr(&u.AgentID)
		case "environment_id":
			return once(&seen, 4) && s.strPtr(&u.EnvironmentID)
		case "purpose":
			return once(&seen, 5) && s.strPtr(&u.Purpose)
		case "agent_version":
			return once(&seen, 6) && s.raw((*[]byte)(&u.AgentVersion))
		case "agent_schema_version":
			return once(&seen, 7) && s.raw((*[]byte)(&u.AgentSchemaVersion))
		case "update_current_version":
			return once(&seen, 8) && s.boolPtr(&u.UpdateCurrentVersion)
		case "agent_instance_id":
			return once(&seen, 9) && s.strPtr(&u.AgentInstanceID)
		case "agent_span_id":
			return once(&seen, 10) && s.strPtr(&u.AgentSpanID)
		case "timestamp":
			return once(&seen, 11) && s.strPtr(&u.Timestamp)
		case "status":
			return once(&seen, 12) && s.strPtr(&u.Status)
		case "result_payload":
			return once(&seen, 13) && s.raw((*[]byte)(&u.ResultPayload))
		case "sensitive_encoding":
			return once(&seen, 14) && s.boolPtr(&u.SensitiveEncoding)
		case "reason":
			return once(&seen, 15) && s.strPtr(&u.Reason)
		case "details":
			if !once(&seen, 16) {
				return false
			}
			if s.next() == 'n' {
				u.Details = nil
				return s.lit("null")
			}
			u.Details = new(spanDetails)
			return s.fastDetails(u.Details)
		case "schema_name":
			return once(&seen, 17) && s.strPtr(&u.SchemaName)
		case "payload":
			return once(&seen, 18) && s.raw((*[]byte)(&u.Payload))
		case "parent_span_id":
			return once(&seen, 19) && s.strPtr(&u.ParentSpanID)
		case "started_at":
			return once(&seen, 20) && s.strPtr(&u.StartedAt)
		case "finished_at":
			return once(&seen, 21) && s.strPtr(&u.FinishedAt)
		}
		return false
	})
}

// fastDetails reads span create details.
func (s *scan) fastDetails(d *spanDetails) bool {
	var seen uint64
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "agent_instance_id":
			return once(&seen, 0) && s.strPtr(&d.AgentInstanceID)
		case "schema_name":
			return once(&seen, 1) && s.strPtr(&d.SchemaName)
		case "status":
			return once(&seen, 2) && s.strPtr(&d.Status)
		case "payload":
			return once(&seen, 3) && s.raw((*[]byte)(&d.Payload))
		case "result_payload":
			return once(&seen, 4) && s.raw((*[]byte)(&d.ResultPayload))
		case "id":
			return once(&seen, 5) && s.strPtr(&d.ID)
		case "parent_span_id":
			return once(&seen, 6) && s.strPtr(&d.ParentSpanID)
		case "started_at":
			return once(&seen, 7) && s.strPtr(&d.StartedAt)
		case "finished_at":
			return once(&seen, 8) && s.strPtr(&d.FinishedAt)
		case "sensitive_encoding":
			return once(&seen, 9) && s.boolPtr(&d.SensitiveEncoding)
		case "idempotency_key":
			return once(&seen, 10) && s.strPtr(&d.IdempotencyKey)
		}
		return false
	})
}

// end reports whether only white space is left.
func (s *scan) end() bool { return s.next() == 0 && s.i == len(s.b) }

// fastRequest decodes a single request body into u.
func fastRequest(b []byte, u *union) bool {
	s := scan{b: b}
	return s.fastUnion(u) && s.end()
}

// fastBulk decodes a bulk body; items is nil when "items" is absent or
// null.
func fastBulk(b []byte) ([]union, bool) {
	s := scan{b: b}
	var items []union
	seen := false
	ok := s.object(func(k []byte) bool {
		if string(k) != "items" || seen {
			return false
		}
		seen = true
		switch s.next() {
		case 'n':
			return s.lit("null")
		case '[':
		default:
			return false
		}
		s.i++
		items = make([]union, 0, len(b)/256+1)
		if s.next() == ']' {
			s.i++
			return true
		}
		for {
			items = append(items, union{})
			if !s.fastUnion(&items[len(items)-1]) {
				return false
			}
			switch s.next() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	})
	if !ok || !s.end() {
		return nil, false
	}
	return items, true
}
