package bufpool_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace/internal/bufpool"
)

// Get returns empty buffers of the configured capacity; Put keeps buffers
// up to Max (a kept one comes back emptied, while the pool is not cleared)
// and drops larger, empty and nil ones.
func TestPool(t *testing.T) {
	p := &bufpool.Pool{Size: 64, Max: 1 << 10}
	bp := p.Get()
	require.Empty(t, *bp)
	require.Equal(t, 64, cap(*bp))

	*bp = append(*bp, "abc"...)
	p.Put(bp)
	// sync.Pool may drop what it is given (GC, race detector); whatever
	// comes back is empty and one of the pool's.
	got := p.Get()
	require.Empty(t, *got)
	require.LessOrEqual(t, cap(*got), 1<<10)

	big := make([]byte, 0, 2<<10)
	p.Put(&big)
	p.Put(nil)
	var none []byte
	p.Put(&none)
	for range 10 {
		b := p.Get()
		require.Empty(t, *b)
		require.LessOrEqual(t, cap(*b), 1<<10, "a buffer over Max is never handed out")
		require.NotZero(t, cap(*b), "a buffer without capacity is never kept")
	}

	var zero bufpool.Pool
	zb := zero.Get()
	require.Empty(t, *zb)
	zero.Put(zb) // no capacity: dropped
}

func BenchmarkPool(b *testing.B) {
	p := &bufpool.Pool{Size: 512, Max: 1 << 20}
	b.ReportAllocs()
	for b.Loop() {
		bp := p.Get()
		*bp = append(*bp, "some bytes"...)
		p.Put(bp)
	}
}
