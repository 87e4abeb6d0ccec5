package llmhttp

// OpenAI Responses: a JSON response object, or typed SSE events ending at
// response.completed, response.incomplete or response.failed (which carry
// the whole response, usage included); there is no [DONE].

func (c *call) responsesEvent(data []byte) {
	var typ, delta, resp, item []byte
	var outIndex int64
	var code, message string
	s := scanner{b: data}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ, _ = s.rawString()
		case "delta":
			if s.peek() == '"' {
				delta, _ = s.rawString()
			} else {
				s.skip()
			}
		case "output_index":
			outIndex = s.int()
		case "response":
			resp = s.raw()
		case "item":
			item = s.raw()
		case "code":
			code = s.str()
		case "message":
			message = s.str()
		default:
			s.skip()
		}
	})
	if !ok || s.bad {
		c.out.parseErrors++
		return
	}
	switch string(typ) {
	case "response.output_text.delta":
		c.firstToken()
		c.appendTextRaw(delta)
	case "response.refusal.delta":
		c.firstToken()
		c.appendRefusal(c.unescaped(delta))
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		c.firstToken()
		c.appendThinkingRaw(delta)
	case "response.function_call_arguments.delta":
		c.firstToken()
		t := c.out.tool(outIndex)
		t.args = c.captureRaw(t.args, delta)
	case "response.output_item.added":
		c.responsesItem(item, outIndex, false)
	case "response.created", "response.in_progress":
		c.responsesDoc(resp, false)
	case "response.completed", "response.incomplete", "response.failed":
		if !c.responsesDoc(resp, false) {
			c.out.parseErrors++
		}
		c.out.terminal = true
	case "error":
		c.out.apiErr = &APIError{Type: code, Code: code, Message: message}
		c.out.terminal = true
	}
}

// responsesDoc reads a response object; withContent reads its output
// (a stream's terminal event repeats what the deltas carried, so it is not
// read twice).
func (c *call) responsesDoc(b []byte, withContent bool) bool {
	var status, incomplete string
	var errRaw []byte
	s := scanner{b: b}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "id":
			c.out.id = s.str()
		case "model":
			c.out.model = s.str()
		case "status":
			status = s.str()
		case "service_tier":
			if !s.isNull() {
				c.out.tier = s.str()
			}
		case "usage":
			if !s.isNull() {
				c.out.usage = openaiUsage(&s)
			}
		case "error":
			if !s.isNull() {
				errRaw = s.raw()
			}
		case "incomplete_details":
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				if keyIs(k, "reason") {
					incomplete = s.str()
				} else {
					s.skip()
				}
			})
		case "output":
			s.array(func(i int) { c.responsesItem(s.raw(), int64(i), withContent) })
		default:
			s.skip()
		}
	})
	switch status {
	case "completed":
		c.out.finish = "stop"
		if len(c.out.tools) > 0 {
			c.out.finish = "tool_calls"
		}
	case "incomplete":
		c.out.finish = incomplete
		if c.out.finish == "" {
			c.out.finish = "incomplete"
		}
	case "failed":
		c.out.finish = "error"
		if errRaw != nil {
			e := parseAPIError(append(append([]byte(`{"error":`), errRaw...), '}'))
			if e.Type == "" {
				e.Type = e.Code
			}
			c.out.apiErr = e
		} else {
			c.out.apiErr = &APIError{Type: "response_failed", Message: "the response failed"}
		}
	}
	return ok && !s.bad
}

// responsesItem reads an output item: a message, a function call or
// reasoning.
func (c *call) responsesItem(b []byte, index int64, withContent bool) {
	var typ, callID, name string
	var args, content, summary []byte
	s := scanner{b: b}
	s.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ = s.str()
		case "call_id":
			callID = s.str()
		case "name":
			name = s.str()
		case "arguments":
			args, _ = s.rawString()
		case "content":
			content = s.raw()
		case "summary":
			summary = s.raw()
		default:
			s.skip()
		}
	})
	switch typ {
	case "function_call", "custom_tool_call":
		t := c.out.tool(index)
		t.id, t.name = callID, name
		if withContent && len(args) > 0 {
			t.args = c.captureRaw(t.args, args)
		}
	case "message":
		if !withContent {
			return
		}
		p := scanner{b: content}
		p.array(func(int) {
			var ptyp string
			var text []byte
			p.object(func(k []byte) {
				switch string(k) {
				case "type":
					ptyp = p.str()
				case "text", "refusal":
					text, _ = p.rawString()
				default:
					p.skip()
				}
			})
			switch ptyp {
			case "output_text":
				c.appendTextRaw(text)
			case "refusal":
				c.appendRefusal(c.unescaped(text))
			}
		})
	case "reasoning":
		if !withContent {
			return
		}
		for _, part := range [][]byte{summary, content} {
			if part == nil {
				continue
			}
			p := scanner{b: part}
			p.array(func(int) {
				p.object(func(k []byte) {
					if keyIs(k, "text") {
						raw, _ := p.rawString()
						c.appendThinkingRaw(raw)
					} else {
						p.skip()
					}
				})
			})
		}
	}
}
