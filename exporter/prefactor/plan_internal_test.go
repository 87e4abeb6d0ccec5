package prefactor

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

type nopSink struct{}

func (nopSink) Done(int, error) {}
func (nopSink) Hold(int)        {}

func spanID(i int) agenttrace.ID {
	var id agenttrace.ID
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

// pendingWorkload drives pendingSpans as plan does: n pending spans, each
// with a child started while it waits (fan: all under the root; chain:
// each pending span a child of the previous one, resolved from the bottom
// up, the order that made every resolution move what waited). It returns
// the operations released, in order.
func pendingWorkload(p *pendingSpans, n int, chain bool) []*op {
	var out []*op
	emit := func(o *op) {
		if anc := p.waiting(o.span); anc != nil {
			anc.push(o)
			return
		}
		out = append(out, o)
	}
	parents := make([]agenttrace.ID, n)
	for i := range n {
		parents[i] = spanID(i)
		parent := agenttrace.ID{}
		if chain && i > 0 {
			parent = parents[i-1]
		}
		p.join(parents[i], parent)
		p.deferSpan(&agenttrace.SpanData{ID: parents[i]}, &recRef{sink: nopSink{}})
		child := spanID(n + i)
		p.join(child, parents[i])
		emit(&op{kind: opCreateSpan, span: child})
	}
	resolve := func(i int) {
		node := p.nodes[parents[i]]
		emit(&op{kind: opCreateSpan, span: parents[i]})
		for o := range p.resolve(node) {
			out = append(out, o)
		}
	}
	if chain {
		for i := n - 1; i >= 0; i-- {
			resolve(i)
		}
	} else {
		for i := range n {
			resolve(i)
		}
	}
	return out
}

// Resolving pending spans releases every waiting operation once, parents
// before children, and leaves no bookkeeping behind; it is linear (see
// BenchmarkPendingResolve: 32,000 pending parents used to take 42 s).
func TestPendingResolveIsCompleteAndOrdered(t *testing.T) {
	for _, chain := range []bool{false, true} {
		t.Run(fmt.Sprintf("chain=%v", chain), func(t *testing.T) {
			const n = 8000
			var p pendingSpans
			p.init()
			out := pendingWorkload(&p, n, chain)
			require.Len(t, out, 2*n)
			pos := map[agenttrace.ID]int{}
			for i, o := range out {
				_, dup := pos[o.span]
				require.False(t, dup)
				pos[o.span] = i
			}
			for i := range n {
				require.Less(t, pos[spanID(i)], pos[spanID(n+i)], "parent %d before its child", i)
				if chain && i > 0 {
					require.Less(t, pos[spanID(i-1)], pos[spanID(i)], "a chain lands top-down")
				}
			}
			require.Empty(t, p.nodes)
			require.Empty(t, p.waitOn, "every wait entry is forgotten")
		})
	}
}

// BenchmarkPendingResolve: the cost per pending span stays flat from 1,000
// to 32,000 spans (linear resolution).
func BenchmarkPendingResolve(b *testing.B) {
	for _, chain := range []bool{false, true} {
		for _, n := range []int{1000, 32_000} {
			b.Run(fmt.Sprintf("chain=%v/n=%d", chain, n), func(b *testing.B) {
				for b.Loop() {
					var p pendingSpans
					p.init()
					pendingWorkload(&p, n, chain)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/span")
			})
		}
	}
}
