package otelbridge

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestJSONString(t *testing.T) {
	assert.Equal(t, "gpt-4o", jsonString([]byte(`"gpt-4o"`)))
	assert.Equal(t, `a"b`, jsonString([]byte(`"a\"b"`)))
	assert.Equal(t, "é", jsonString([]byte(`"\u00e9"`)))
	assert.Equal(t, "", jsonString([]byte(`12`)))
	n, ok := jsonInt([]byte("42"))
	assert.True(t, ok)
	assert.Equal(t, int64(42), n)
}

// TestNames checks the interning of payload strings: a string needing no
// decoding is kept and returned again, an escaped one is decoded and not
// kept, a non-string is "", and no more than maxNames are kept.
func TestNames(t *testing.T) {
	n := names{}
	a := n.str([]byte(`"gpt-4o"`))
	assert.Equal(t, "gpt-4o", a)
	assert.Equal(t, map[string]string{"gpt-4o": "gpt-4o"}, map[string]string(n))
	assert.Equal(t, "gpt-4o", n.str([]byte(`"gpt-4o"`)))
	assert.Equal(t, `a"b`, n.str([]byte(`"a\"b"`)))
	assert.Equal(t, "", n.str([]byte(`12`)))
	assert.Len(t, n, 1)
	for i := range 2 * maxNames {
		n.str([]byte(`"m` + strconv.Itoa(i) + `"`))
	}
	assert.Len(t, n, maxNames)
	assert.Equal(t, "m9999", n.str([]byte(`"m9999"`)), "a string past the bound is still read")
	var none names
	assert.Equal(t, "x", none.str([]byte(`"x"`)), "a nil names reads without keeping")
}

// TestSpanNames checks the span names and finish-reason attributes kept
// between spans: one value per key, made again (equal) past the bound, and
// a nil *spanNames makes every value anew.
func TestSpanNames(t *testing.T) {
	c := newSpanNames()
	assert.Equal(t, "chat", c.join("chat", ""))
	a := c.join("chat", "gpt-4o")
	assert.Equal(t, "chat gpt-4o", a)
	assert.Equal(t, a, c.join("chat", "gpt-4o"))
	assert.Len(t, c.joined, 1)
	kv := c.finishReasons("stop")
	assert.Equal(t, KeyResponseFinishReasons.StringSlice([]string{"stop"}), kv)
	assert.Equal(t, kv, c.finishReasons("stop"))
	assert.Len(t, c.reasons, 1)
	for i := range 2 * maxNames {
		c.join("execute_tool", "t"+strconv.Itoa(i))
		c.finishReasons("r" + strconv.Itoa(i))
	}
	assert.Len(t, c.joined, maxNames)
	assert.Len(t, c.reasons, maxNames)
	assert.Equal(t, "execute_tool t999", c.join("execute_tool", "t999"), "a name past the bound is still made")
	assert.Equal(t, []string{"r999"}, c.finishReasons("r999").Value.AsStringSlice())
	var none *spanNames
	assert.Equal(t, "invoke_agent a", none.join("invoke_agent", "a"))
	assert.Equal(t, []string{"length"}, none.finishReasons("length").Value.AsStringSlice())
}
