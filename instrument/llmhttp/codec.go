package llmhttp

import "bytes"

// event reads one SSE event (name may be empty) or JSON array element.
func (c *call) event(name, data []byte) {
	switch c.route.api {
	case apiChat:
		c.chatEvent(data)
	case apiResponses:
		c.responsesEvent(data)
	case apiAnthropic:
		c.anthropicEvent(data)
	case apiGemini:
		c.geminiDoc(data, true)
	}
}

// document reads a whole JSON response body.
func (c *call) document(b []byte) {
	var ok bool
	switch c.route.api {
	case apiChat:
		ok = c.chatDoc(b)
	case apiResponses:
		ok = c.responsesDoc(b, true)
	case apiAnthropic:
		ok = c.anthropicDoc(b)
	case apiGemini:
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '[' {
			// A streamed response read as one document.
			f := arrayFramer{emit: c.event, drop: c.dropped}
			f.write(b)
			ok = true
		} else {
			ok = c.geminiDoc(b, false)
		}
	}
	if !ok {
		c.out.parseErrors++
		return
	}
	c.out.terminal = true
}

// parseAPIError reads an API error body: OpenAI's and Gemini's
// {"error":{...}}, Anthropic's {"type":"error","error":{...}}, or a plain
// {"message":...}.
func parseAPIError(b []byte) *APIError {
	e := &APIError{}
	s := scanner{b: b}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "error":
			if s.peek() == '"' {
				e.Message = s.str()
				return
			}
			s.object(func(k []byte) {
				switch string(k) {
				case "message":
					e.Message = s.str()
				case "type":
					e.Type = s.str()
				case "status": // Gemini's
					e.Type = s.str()
				case "code":
					if s.peek() == '"' {
						e.Code = s.str()
					} else {
						s.skip()
					}
				default:
					s.skip()
				}
			})
		case "message":
			if e.Message == "" {
				e.Message = s.str()
			} else {
				s.skip()
			}
		default:
			s.skip()
		}
	})
	if !ok || s.bad {
		// Not JSON: keep the start of the text (HTML error pages, proxies).
		msg := bytes.TrimSpace(b)
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return &APIError{Message: string(msg)}
	}
	return e
}
