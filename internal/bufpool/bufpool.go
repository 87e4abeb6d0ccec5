// Package bufpool recycles byte buffers: the one buffer pool type of the
// root package (payload encoding) and the Prefactor exporter (request and
// answer bodies).
package bufpool

import "sync"

// Pool hands out byte buffers of length 0 and takes them back, keeping
// those whose capacity is at most Max (a buffer that grew for one huge
// value is left to the garbage collector). New buffers have capacity Size.
// The zero value is ready to use, keeping nothing; a Pool must not be
// copied after first use.
type Pool struct {
	Size, Max int
	p         sync.Pool
}

// Get returns an empty buffer, recycled or new.
func (p *Pool) Get() *[]byte {
	if bp, ok := p.p.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, p.Size)
	return &b
}

// Put takes *bp back for a later Get, emptied, unless it is nil, has no
// capacity or has more than Max. The caller must not use *bp afterwards.
func (p *Pool) Put(bp *[]byte) {
	if bp == nil || cap(*bp) == 0 || cap(*bp) > p.Max {
		return
	}
	*bp = (*bp)[:0]
	p.p.Put(bp)
}
