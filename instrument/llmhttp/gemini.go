package llmhttp

// Gemini generateContent: a JSON GenerateContentResponse; streamed, one
// such response per SSE event (alt=sse) or per element of a JSON array.
// There is no sentinel: the stream is complete when a candidate has a
// finish reason. usageMetadata is the running total of the request.

// geminiDoc reads one GenerateContentResponse; frame says it is one
// element of a stream.
func (c *call) geminiDoc(b []byte, frame bool) bool {
	s := scanner{b: b}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "candidates":
			s.array(func(i int) { c.geminiCandidate(&s, i, frame) })
		case "usageMetadata":
			c.out.usage = geminiUsage(&s)
		case "modelVersion":
			if c.out.model == "" {
				c.out.model = s.str()
			} else {
				s.skip()
			}
		case "responseId":
			if c.out.id == "" {
				c.out.id = s.str()
			} else {
				s.skip()
			}
		case "promptFeedback":
			s.object(func(k []byte) {
				if keyIs(k, "blockReason") {
					if r := s.str(); r != "" {
						c.out.finish = r
						c.out.terminal = true
					}
				} else {
					s.skip()
				}
			})
		case "error":
			c.out.apiErr = parseAPIError(append(append([]byte(`{"error":`), s.raw()...), '}'))
			c.out.terminal = true
		default:
			s.skip()
		}
	})
	if frame && (!ok || s.bad) {
		c.out.parseErrors++
	}
	return ok && !s.bad
}

func (c *call) geminiCandidate(s *scanner, i int, frame bool) {
	s.object(func(k []byte) {
		switch string(k) {
		case "content":
			if i != 0 {
				s.skip()
				return
			}
			s.object(func(k []byte) {
				if keyIs(k, "parts") {
					s.array(func(int) { c.geminiPart(s, frame) })
				} else {
					s.skip()
				}
			})
		case "finishReason":
			if i != 0 {
				s.skip()
				return
			}
			if f := s.str(); f != "" {
				c.out.finish = f
				if f != "FINISH_REASON_UNSPECIFIED" {
					c.out.terminal = true
				}
			}
		case "continuationToken":
			c.contTok = s.str()
		default:
			s.skip()
		}
	})
}

func (c *call) geminiPart(s *scanner, frame bool) {
	var text []byte
	var thought bool
	var callName, callID string
	var args []byte
	var isCall bool
	s.object(func(k []byte) {
		switch string(k) {
		case "text":
			text, _ = s.rawString()
		case "thought":
			thought = s.peek() == 't'
			s.skip()
		case "functionCall":
			isCall = true
			s.object(func(k []byte) {
				switch string(k) {
				case "name":
					callName = s.str()
				case "id":
					callID = s.str()
				case "args":
					args = s.raw()
				default:
					s.skip()
				}
			})
		default:
			s.skip()
		}
	})
	if frame && (len(text) > 0 || isCall) {
		c.firstToken()
	}
	switch {
	case isCall:
		t := c.out.tool(int64(len(c.out.tools)))
		t.id, t.name = callID, callName
		t.args = c.capture(t.args, args)
	case thought:
		c.appendThinkingRaw(text)
	case text != nil:
		c.appendTextRaw(text)
	}
}

// geminiUsage reads usageMetadata. promptTokenCount includes cached
// tokens; candidatesTokenCount excludes thoughtsTokenCount, so the output
// is candidates + thoughts; toolUsePromptTokenCount is input too.
func geminiUsage(s *scanner) usage {
	u := usage{seen: true}
	var prompt, cand, thoughts, tool int64
	s.object(func(k []byte) {
		switch string(k) {
		case "promptTokenCount":
			prompt = s.int()
		case "candidatesTokenCount":
			cand = s.int()
		case "thoughtsTokenCount":
			thoughts = s.int()
		case "toolUsePromptTokenCount":
			tool = s.int()
		case "cachedContentTokenCount":
			u.cacheRead = s.int()
		case "totalTokenCount":
			u.tot = s.int()
		default:
			s.skip()
		}
	})
	u.prompt = prompt + tool
	u.completion = cand + thoughts
	u.reasoning = thoughts
	u.toolPrompt = tool
	if u.tot == 0 {
		u.tot = u.prompt + u.completion
	}
	return u
}
