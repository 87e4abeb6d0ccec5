package jsonscan

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPlainWord checks the eight-byte test against the byte table it
// stands for, for every byte value in every position of a word.
func TestPlainWord(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			var w [8]byte
			for i := range w {
				w[i] = 'a'
			}
			w[pos] = byte(c)
			x := binary.LittleEndian.Uint64(w[:])
			require.Equal(t, inString[c], plainWord(x), "byte %#x at %d", c, pos)
		}
	}
	require.True(t, plainWord(binary.LittleEndian.Uint64([]byte("é€ab  ~!"))))
}
