package agenttrace

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

// truncateJSON shrinks a JSON object that is over limit bytes into a valid
// JSON object of at most limit bytes that says it was truncated (under
// MarkerKey, with the original size orig). It keeps the structure: the byte
// budget is shared among an object's members and an array's elements so
// that small ones stay whole and the large ones are cut alike (long strings
// keep their start, long arrays their first elements and a count of the
// rest, members beyond the budget a count under "…[truncated]"). Keys come
// out sorted. Below maxShrinkDepth levels no structure is kept. If that
// cannot fit, it keeps a string preview of the start of the original.
//
// It decodes the input once and then visits each value at most once per
// level above it: O(size × depth), with the depth bounded.
func truncateJSON(in []byte, limit, orig int) []byte {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		if obj, ok := v.(map[string]any); ok {
			delete(obj, MarkerKey)
			marker := newObj(nil)
			marker.True("truncated", true)
			marker.Int("original_bytes", int64(orig))
			mb := marker.End()
			// {<members>,"_agenttrace":<marker>}
			overhead := len(MarkerKey) + 3 + len(mb) + 1
			budget := limit - overhead
			t := truncator{}
			full := size(obj, 0)
			for range 6 {
				if budget < 2 {
					break
				}
				b := t.fitSized(make([]byte, 0, limit), obj, full, budget, 0)
				// b is {...}: splice the marker in before the closing brace.
				b = b[:len(b)-1]
				if len(b) > 1 {
					b = append(b, ',')
				}
				b = jsonesc.AppendString(b, MarkerKey)
				b = append(b, ':')
				b = append(b, mb...)
				b = append(b, '}')
				if len(b) <= limit {
					return b
				}
				// The estimates were short (escapes, markers): try smaller.
				budget -= (len(b)-limit)*2 + 16
			}
		}
	}
	return previewMarker(in, limit, orig)
}

const truncSuffix = "…[truncated]"

// maxShrinkDepth is the nesting depth below which a truncated payload keeps
// no structure, which also bounds the work truncation does.
const maxShrinkDepth = 32

// minShare is the smallest budget worth giving a member: below it, fewer
// members are kept.
const minShare = 24

// truncator fits decoded JSON values into byte budgets.
type truncator struct{}

// size returns the length of v's JSON encoding by appendAny.
func size(v any, depth int) int {
	if depth >= maxShrinkDepth {
		switch v.(type) {
		case map[string]any, []any:
			return quotedLen(truncSuffix + " (nested too deep)")
		}
	}
	switch x := v.(type) {
	case nil:
		return 4
	case bool:
		if x {
			return 4
		}
		return 5
	case json.Number:
		return len(x)
	case string:
		return quotedLen(x)
	case []any:
		n := 2 + max(len(x)-1, 0)
		for _, e := range x {
			n += size(e, depth+1)
		}
		return n
	case map[string]any:
		n := 2 + max(len(x)-1, 0)
		for k, e := range x {
			n += quotedLen(k) + 1 + size(e, depth+1)
		}
		return n
	}
	return 4
}

// quotedLen is len(jsonesc.AppendString(nil, s)).
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, sz := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && sz == 1 {
			n += len("\ufffd")
		} else {
			n += sz
		}
		i += sz
	}
	return n
}

// appendAny appends v (a decoded JSON value) in full, keys sorted.
func appendAny(b []byte, v any, depth int) []byte {
	if depth >= maxShrinkDepth {
		switch v.(type) {
		case map[string]any, []any:
			return jsonesc.AppendString(b, truncSuffix+" (nested too deep)")
		}
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case json.Number:
		return append(b, x...)
	case string:
		return jsonesc.AppendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAny(b, e, depth+1)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonesc.AppendString(b, k)
			b = append(b, ':')
			b = appendAny(b, x[k], depth+1)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// waterLevel returns the cap c that shares budget among values of the given
// sizes: those up to c are kept whole, the others get c each. It returns
// -1 when everything fits.
func waterLevel(sizes []int, budget int) int {
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	left, m := budget, len(sorted)
	for _, s := range sorted {
		if s*m > left {
			return left / m
		}
		left -= s
		m--
	}
	return -1
}

// fitSized appends v, whose encoding is full bytes long, in at most about
// budget bytes.
func (t *truncator) fitSized(b []byte, v any, full, budget, depth int) []byte {
	if full <= budget {
		return appendAny(b, v, depth)
	}
	switch x := v.(type) {
	case string:
		return appendCut(b, x, budget)
	case []any:
		return t.fitArray(b, x, budget, depth)
	case map[string]any:
		return t.fitObject(b, x, budget, depth)
	}
	return appendAny(b, v, depth) // a scalar: small
}

// appendCut appends the start of s, cut on a rune boundary, with the
// truncation suffix, in at most budget bytes (at least the suffix).
func appendCut(b []byte, s string, budget int) []byte {
	room := budget - quotedLen(truncSuffix)
	n, cut := 0, 0
	for cut < len(s) {
		_, sz := utf8.DecodeRuneInString(s[cut:])
		w := quotedLen(s[cut:cut+sz]) - 2
		if n+w > room {
			break
		}
		n += w
		cut += sz
	}
	return jsonesc.AppendString(b, s[:cut]+truncSuffix)
}

// prefix returns how many leading costs fit in room.
func prefix(costs []int, room int) int {
	for i, c := range costs {
		if room -= c; room < 0 {
			return i
		}
	}
	return len(costs)
}

// fitArray shares the budget among all elements when each still gets a
// useful share (an array of a few long strings), and otherwise keeps the
// leading elements whole and counts the rest (a long list of records).
func (t *truncator) fitArray(b []byte, x []any, budget, depth int) []byte {
	if depth+1 >= maxShrinkDepth || budget < 2 {
		return appendAny(b, x, depth) // replaced by the too-deep marker (or too small to matter)
	}
	sizes := make([]int, len(x))
	for i, e := range x {
		sizes[i] = size(e, depth+1)
	}
	inner := budget - 2 - max(len(x)-1, 0)
	if c := waterLevel(sizes, inner); c >= 4*minShare {
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = t.fitSized(b, e, sizes[i], min(sizes[i], c), depth+1)
		}
		return append(b, ']')
	}
	more := func(k int) string { return truncSuffix + " " + strconv.Itoa(len(x)-k) + " more" }
	room := budget - 2 - quotedLen(more(0)) - 1
	costs := make([]int, len(x))
	for i := range sizes {
		costs[i] = sizes[i] + 1
	}
	keep := prefix(costs, room)
	b = append(b, '[')
	for i := range keep {
		b = appendAny(b, x[i], depth+1)
		b = append(b, ',')
	}
	if keep == 0 && room > minShare {
		// Not even the first element fits whole: keep a cut of it.
		b = t.fitSized(b, x[0], sizes[0], room-1, depth+1)
		b = append(b, ',')
		keep = 1
	}
	if keep < len(x) {
		b = jsonesc.AppendString(b, more(keep))
	} else {
		b = b[:len(b)-1]
	}
	return append(b, ']')
}

// fitObject keeps the leading members (keys sorted) that fit with at least
// a small share each, counts the others under "…[truncated]", and shares
// the budget among the values kept: small ones stay whole, large ones are
// cut alike.
func (t *truncator) fitObject(b []byte, x map[string]any, budget, depth int) []byte {
	if depth+1 >= maxShrinkDepth || budget < 2 {
		return appendAny(b, x, depth)
	}
	keys := slices.Sorted(maps.Keys(x))
	sizes := make([]int, len(keys))
	costs := make([]int, len(keys))
	for i, k := range keys {
		sizes[i] = size(x[k], depth+1)
		costs[i] = quotedLen(k) + 2 + min(sizes[i], minShare) // key, colon, comma, a share
	}
	more := func(k int) string { return strconv.Itoa(len(keys)-k) + " more keys" }
	keep := len(keys)
	room := budget - 2
	if prefix(costs, room) < len(keys) {
		room -= quotedLen(truncSuffix) + 1 + quotedLen(more(0)) + 1
		keep = prefix(costs, room)
	}
	inner := room - max(keep-1, 0)
	for _, k := range keys[:keep] {
		inner -= quotedLen(k) + 1
	}
	c := waterLevel(sizes[:keep], inner)
	b = append(b, '{')
	for i := range keep {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonesc.AppendString(b, keys[i])
		b = append(b, ':')
		share := sizes[i]
		if c >= 0 {
			share = min(share, max(c, 0))
		}
		b = t.fitSized(b, x[keys[i]], sizes[i], share, depth+1)
	}
	if keep < len(keys) {
		if keep > 0 {
			b = append(b, ',')
		}
		b = jsonesc.AppendString(b, truncSuffix)
		b = append(b, ':')
		b = jsonesc.AppendString(b, more(keep))
	}
	return append(b, '}')
}
