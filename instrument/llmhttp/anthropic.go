package llmhttp

import "bytes"

// anthUsage is an Anthropic usage object. input_tokens excludes the cache
// tokens, so the inclusive prompt total is input + cache read + cache
// creation.
type anthUsage struct {
	in, out, cacheRead, cacheCreate, cc5m, cc1h, thinking int64
	tier                                                  string
}

// read merges the members present in a usage object (message_delta
// repeats some of message_start's, cumulatively).
func (u *anthUsage) read(s *scanner) {
	s.object(func(k []byte) {
		switch string(k) {
		case "input_tokens":
			u.in = s.int()
		case "output_tokens":
			u.out = s.int()
		case "cache_read_input_tokens":
			u.cacheRead = s.int()
		case "cache_creation_input_tokens":
			u.cacheCreate = s.int()
		case "cache_creation":
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				switch string(k) {
				case "ephemeral_5m_input_tokens":
					u.cc5m = s.int()
				case "ephemeral_1h_input_tokens":
					u.cc1h = s.int()
				default:
					s.skip()
				}
			})
		case "output_tokens_details":
			if s.isNull() {
				return
			}
			s.object(func(k []byte) {
				if keyIs(k, "thinking_tokens") {
					u.thinking = s.int()
				} else {
					s.skip()
				}
			})
		case "service_tier":
			u.tier = s.str()
		default:
			s.skip()
		}
	})
}

func (u *anthUsage) normalized() usage {
	cw := u.cacheCreate
	if cw == 0 {
		cw = u.cc5m + u.cc1h
	}
	return usage{
		seen: true, prompt: u.in + u.cacheRead + cw, completion: u.out,
		tot:       u.in + u.cacheRead + cw + u.out,
		cacheRead: u.cacheRead, cacheWrite: cw, cacheWrite5m: u.cc5m, cacheWrite1h: u.cc1h,
		reasoning: u.thinking,
	}
}

func (c *call) anthropicEvent(data []byte) {
	var typ, message, block, delta, usageRaw, errRaw []byte
	var index int64
	s := scanner{b: data}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ, _ = s.rawString()
		case "index":
			index = s.int()
		case "message":
			message = s.raw()
		case "content_block":
			block = s.raw()
		case "delta":
			delta = s.raw()
		case "usage":
			usageRaw = s.raw()
		case "error":
			errRaw = s.raw()
		default:
			s.skip()
		}
	})
	if !ok || s.bad {
		c.out.parseErrors++
		return
	}
	switch string(typ) {
	case "message_start":
		c.anthropicMessage(message, false)
	case "content_block_start":
		c.anthropicBlock(block, index, false)
	case "content_block_delta":
		c.anthropicDelta(delta, index)
	case "message_delta":
		d := scanner{b: delta}
		d.object(func(k []byte) {
			if keyIs(k, "stop_reason") {
				c.out.finish = d.str()
			} else {
				d.skip()
			}
		})
		if usageRaw != nil {
			u := scanner{b: usageRaw}
			c.anth.read(&u)
			c.out.usage = c.anth.normalized()
		}
	case "message_stop":
		c.out.terminal = true
	case "error":
		e := parseAPIError(append([]byte(`{"error":`), append(errRaw, '}')...))
		c.out.apiErr = e
		c.out.terminal = true
	}
}

// anthropicMessage reads a Messages API message (a whole response, or
// message_start's skeleton).
func (c *call) anthropicMessage(b []byte, withContent bool) bool {
	s := scanner{b: b}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "id":
			c.out.id = s.str()
		case "model":
			c.out.model = s.str()
		case "stop_reason":
			c.out.finish = s.str()
		case "usage":
			c.anth.read(&s)
			c.out.usage = c.anth.normalized()
		case "content":
			if !withContent {
				s.skip()
				return
			}
			s.array(func(i int) {
				block := s.raw()
				c.anthropicBlock(block, int64(i), true)
			})
		default:
			s.skip()
		}
	})
	if c.anth.tier != "" {
		c.out.tier = c.anth.tier
	}
	return ok && !s.bad
}

func (c *call) anthropicDoc(b []byte) bool {
	if e := parseAPIError(b); e.Type != "" && bytes.Contains(b, []byte(`"type":"error"`)) {
		c.out.apiErr = e
		return true
	}
	return c.anthropicMessage(b, true)
}

// anthropicBlock reads a content block: a whole one in a response, or the
// start of a streamed one.
func (c *call) anthropicBlock(b []byte, index int64, whole bool) {
	var typ, text, thinking, id, name string
	var input []byte
	s := scanner{b: b}
	s.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ = s.str()
		case "text":
			raw, _ := s.rawString()
			text = string(unescape(nil, raw))
		case "thinking":
			raw, _ := s.rawString()
			thinking = string(unescape(nil, raw))
		case "id":
			id = s.str()
		case "name":
			name = s.str()
		case "input":
			input = s.raw()
		default:
			s.skip()
		}
	})
	switch typ {
	case "text":
		c.appendText([]byte(text))
	case "thinking":
		c.appendThinking([]byte(thinking))
	case "redacted_thinking":
		c.thinkingBytes += int64(len(b))
	case "tool_use", "server_tool_use", "mcp_tool_use":
		t := c.out.tool(index)
		t.id, t.name = id, name
		if whole && len(input) > 0 {
			t.args = c.capture(t.args, input)
		}
	}
}

func (c *call) anthropicDelta(b []byte, index int64) {
	var typ []byte
	var val []byte
	s := scanner{b: b}
	s.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ, _ = s.rawString()
		case "text", "partial_json", "thinking":
			val, _ = s.rawString()
		default:
			s.skip()
		}
	})
	switch string(typ) {
	case "text_delta":
		c.firstToken()
		c.appendTextRaw(val)
	case "thinking_delta":
		c.firstToken()
		c.appendThinkingRaw(val)
	case "input_json_delta":
		c.firstToken()
		t := c.out.tool(index)
		t.args = c.captureRaw(t.args, val)
	}
}
