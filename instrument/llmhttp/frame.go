package llmhttp

import "bytes"

// A framer cuts a response body into the units its codec reads: SSE
// events, JSON array elements or one JSON document. It copies only what
// straddles two reads or what an event's data needs, into buffers it
// reuses.
type framer interface {
	write(p []byte)
	// end is called when the body ends: eof is false when the caller
	// closed it before EOF.
	end(eof bool)
}

// maxEvent caps one SSE event or array element; a larger one is dropped
// and counted as a parse error.
const maxEvent = 8 << 20

// sseFramer splits text/event-stream bodies (the WHATWG algorithm: lines
// end in LF, CRLF or CR; data lines join with LF; a blank line dispatches).
type sseFramer struct {
	emit    func(name, data []byte)
	drop    func()
	partial []byte
	event   []byte
	data    []byte
	hasData bool
	skipLF  bool
	tooBig  bool
}

func (f *sseFramer) write(p []byte) {
	for len(p) > 0 {
		if f.skipLF {
			f.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexByte(p, '\n')
		end := i
		if end < 0 {
			end = len(p)
		}
		if j := bytes.IndexByte(p[:end], '\r'); j >= 0 {
			i = j
			f.skipLF = true
		}
		if i < 0 {
			if len(f.partial)+len(p) > maxEvent {
				f.tooBig = true
				f.partial = f.partial[:0]
				return
			}
			f.partial = append(f.partial, p...)
			return
		}
		line := p[:i]
		if len(f.partial) > 0 {
			f.partial = append(f.partial, line...)
			line = f.partial
		}
		p = p[i+1:]
		f.line(line)
		f.partial = f.partial[:0]
	}
}

func (f *sseFramer) line(l []byte) {
	if len(l) == 0 {
		f.dispatch()
		return
	}
	if f.tooBig {
		return
	}
	if l[0] == ':' {
		return // a comment
	}
	field, value := l, []byte(nil)
	if i := bytes.IndexByte(l, ':'); i >= 0 {
		field, value = l[:i], l[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if len(f.data)+len(value) > maxEvent {
			f.tooBig = true
			return
		}
		if f.hasData {
			f.data = append(f.data, '\n')
		}
		f.data = append(f.data, value...)
		f.hasData = true
	case "event":
		f.event = append(f.event[:0], value...)
	}
}

func (f *sseFramer) dispatch() {
	if f.tooBig {
		f.drop()
	} else if f.hasData {
		f.emit(f.event, f.data)
	}
	f.event, f.data, f.hasData, f.tooBig = f.event[:0], f.data[:0], false, false
}

// end dispatches an event the server did not end with a blank line.
func (f *sseFramer) end(eof bool) {
	if !eof {
		return
	}
	if len(f.partial) > 0 {
		f.line(f.partial)
		f.partial = f.partial[:0]
	}
	if f.hasData || f.tooBig {
		f.dispatch()
	}
}

// arrayFramer splits a JSON array of objects (Gemini's
// streamGenerateContent without alt=sse) into its elements as they arrive.
type arrayFramer struct {
	emit   func(name, data []byte)
	drop   func()
	depth  int
	inStr  bool
	esc    bool
	elem   []byte
	inElem bool
	tooBig bool
}

func (f *arrayFramer) write(p []byte) {
	start := -1
	if f.inElem {
		start = 0
	}
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if f.inStr {
			switch {
			case f.esc:
				f.esc = false
			case ch == '\\':
				f.esc = true
			case ch == '"':
				f.inStr = false
			}
			continue
		}
		switch ch {
		case '"':
			f.inStr = true
		case '{', '[':
			f.depth++
			if f.depth == 2 && !f.inElem {
				f.inElem, start = true, i
			}
		case '}', ']':
			f.depth--
			if f.depth == 1 && f.inElem {
				f.appendElem(p[start : i+1])
				f.flush()
				start = -1
			}
		}
	}
	if f.inElem && start >= 0 {
		f.appendElem(p[start:])
	}
}

func (f *arrayFramer) appendElem(p []byte) {
	if len(f.elem)+len(p) > maxEvent {
		f.tooBig = true
		f.elem = f.elem[:0]
		return
	}
	if !f.tooBig {
		f.elem = append(f.elem, p...)
	}
}

func (f *arrayFramer) flush() {
	if f.tooBig {
		f.drop()
	} else {
		f.emit(nil, f.elem)
	}
	f.elem, f.inElem, f.tooBig = f.elem[:0], false, false
}

func (f *arrayFramer) end(bool) {}

// jsonFramer collects a JSON body, up to max bytes, and parses it at the
// end.
type jsonFramer struct {
	c    *call
	buf  []byte
	max  int
	over bool
}

func (f *jsonFramer) write(p []byte) {
	if f.over {
		return
	}
	if len(f.buf)+len(p) > f.max {
		f.over = true
		f.buf = nil
		return
	}
	f.buf = append(f.buf, p...)
}

func (f *jsonFramer) end(bool) {
	if f.over {
		f.c.out.parseErrors++
		f.c.out.terminal = true // the body was read; it was only too big to record
		return
	}
	if len(f.buf) == 0 {
		return
	}
	f.c.document(f.buf)
	f.buf = nil
}
