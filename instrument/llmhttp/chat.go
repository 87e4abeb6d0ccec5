package llmhttp

// OpenAI Chat Completions: a JSON chat.completion, or SSE chunks
// (chat.completion.chunk) ending with "data: [DONE]"; with
// stream_options.include_usage the last chunk before it has "choices": []
// and the usage.

func (c *call) chatEvent(data []byte) {
	if len(data) == 6 && string(data) == "[DONE]" {
		c.out.terminal = true
		return
	}
	if !c.chatObject(data, true) {
		c.out.parseErrors++
	}
}

func (c *call) chatDoc(b []byte) bool { return c.chatObject(b, false) }

// chatObject reads a completion or a chunk.
func (c *call) chatObject(b []byte, chunk bool) bool {
	s := scanner{b: b}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "id":
			if c.out.id == "" {
				c.out.id = s.str()
			} else {
				s.skip()
			}
		case "model":
			if c.out.model == "" {
				c.out.model = s.str()
			} else {
				s.skip()
			}
		case "service_tier":
			if s.isNull() {
				return
			}
			c.out.tier = s.str()
		case "choices":
			s.array(func(int) { c.chatChoice(&s, chunk) })
		case "usage":
			if s.isNull() {
				return
			}
			c.out.usage = openaiUsage(&s)
		case "error":
			c.out.apiErr = parseAPIError(append(append([]byte(`{"error":`), s.raw()...), '}'))
		default:
			s.skip()
		}
	})
	return ok && !s.bad
}

func (c *call) chatChoice(s *scanner, chunk bool) {
	var index int64
	var finish []byte
	var msg []byte
	s.object(func(k []byte) {
		switch string(k) {
		case "index":
			index = s.int()
		case "delta", "message":
			msg = s.raw()
		case "finish_reason":
			if !s.isNull() {
				finish, _ = s.rawString()
			}
		default:
			s.skip()
		}
	})
	if index != 0 {
		return // the first choice is recorded (n > 1 is rare)
	}
	if finish != nil {
		c.out.finish = string(finish)
	}
	if msg == nil {
		return
	}
	m := scanner{b: msg}
	m.object(func(k []byte) {
		switch string(k) {
		case "content":
			if m.isNull() {
				return
			}
			raw, ok := m.rawString()
			if !ok {
				m.fail()
				return
			}
			if len(raw) > 0 && chunk {
				c.firstToken()
			}
			c.appendTextRaw(raw)
		case "refusal":
			if m.isNull() {
				return
			}
			raw, _ := m.rawString()
			if len(raw) > 0 && chunk {
				c.firstToken()
			}
			c.appendRefusal(c.unescaped(raw))
		case "reasoning_content", "reasoning":
			// DeepSeek's, vLLM's and OpenRouter's reasoning text.
			if m.peek() != '"' {
				m.skip()
				return
			}
			raw, _ := m.rawString()
			if len(raw) > 0 && chunk {
				c.firstToken()
			}
			c.appendThinkingRaw(raw)
		case "tool_calls":
			m.array(func(i int) { c.chatToolCall(&m, int64(i), chunk) })
		default:
			m.skip()
		}
	})
}

func (c *call) chatToolCall(s *scanner, pos int64, chunk bool) {
	key := pos
	var id, name string
	var args []byte
	s.object(func(k []byte) {
		switch string(k) {
		case "index":
			key = s.int()
		case "id":
			id = s.str()
		case "function":
			s.object(func(k []byte) {
				switch string(k) {
				case "name":
					name = s.str()
				case "arguments":
					if s.isNull() {
						return
					}
					args, _ = s.rawString()
				default:
					s.skip()
				}
			})
		default:
			s.skip()
		}
	})
	if chunk {
		c.firstToken()
	}
	t := c.out.tool(key)
	if id != "" {
		t.id = id
	}
	if name != "" {
		t.name += name
	}
	if len(args) > 0 {
		t.args = c.captureRaw(t.args, args)
	}
}

// openaiUsage reads an OpenAI usage object (Chat's prompt_tokens or
// Responses' input_tokens; both include cached tokens and reasoning
// tokens in their totals).
func openaiUsage(s *scanner) usage {
	u := usage{seen: true}
	details := func(in bool) {
		if s.isNull() {
			return
		}
		s.object(func(k []byte) {
			switch string(k) {
			case "cached_tokens":
				u.cacheRead = s.int()
			case "cache_write_tokens", "cache_creation_tokens":
				u.cacheWrite = s.int()
			case "audio_tokens":
				if in {
					u.audioIn = s.int()
				} else {
					u.audioOut = s.int()
				}
			case "reasoning_tokens":
				u.reasoning = s.int()
			default:
				s.skip()
			}
		})
	}
	s.object(func(k []byte) {
		switch string(k) {
		case "prompt_tokens", "input_tokens":
			u.prompt = s.int()
		case "completion_tokens", "output_tokens":
			u.completion = s.int()
		case "total_tokens":
			u.tot = s.int()
		case "prompt_tokens_details", "input_tokens_details":
			details(true)
		case "completion_tokens_details", "output_tokens_details":
			details(false)
		case "cost": // OpenRouter's, in USD
			if s.peek() == '-' || (s.peek() >= '0' && s.peek() <= '9') {
				u.cost, u.costSeen = s.float(), true
			} else {
				s.skip()
			}
		default:
			s.skip()
		}
	})
	return u
}
