package jsonesc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/jsonesc"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t cr\r ctl\x01\x1f", "ünïcødé ✓ 🚀", "bad\xff\xfeutf8", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := jsonesc.AppendString([]byte("x"), s)
		require.Equal(t, byte('x'), b[0])
		b = b[1:]
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		require.True(t, utf8.Valid(b))
		var back string
		require.NoError(t, json.Unmarshal(b, &back))
		if utf8.ValidString(s) {
			require.Equal(t, s, back)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"short", "gpt-4o"},
		{"text", "You are a helpful assistant. Plan the steps needed to answer the user's question, then call the tools you need, one at a time, and report."},
		{"escaped", "line one\nline \"two\"\twith a tab\nand ünïcødé ✓"},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				buf = jsonesc.AppendString(buf[:0], c.s)
			}
		})
	}
}

// Every byte value, at every offset of the eight-byte fast path, is
// escaped or copied as the byte-at-a-time rules say.
func TestEveryByteAtEveryOffset(t *testing.T) {
	for c := range 256 {
		for off := range 17 {
			in := []byte("abcdefghijklmnopq")
			in[off] = byte(c)
			s := string(in)
			b := jsonesc.AppendString(nil, s)
			require.True(t, json.Valid(b), "%q -> %s", s, b)
			require.True(t, utf8.Valid(b))
			var back string
			require.NoError(t, json.Unmarshal(b, &back))
			if utf8.ValidString(s) {
				require.Equal(t, s, back)
			} else {
				require.Equal(t, strings.ToValidUTF8(s, "\ufffd"), back)
			}
		}
	}
}
