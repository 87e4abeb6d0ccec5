package web

import (
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
)

// TestBigRunInBrowser opens a 5,000-span run: the page holds only the rows
// in view, reaches the last span from the keyboard, and finds every failed
// span. (Its speed is BenchmarkRunPage5000Spans'.)
func TestBigRunInBrowser(t *testing.T) {
	ctx := newBrowser(t, 1400, 900)
	ts := newTestServer(t)
	id := bigRun(t, ts, "five thousand", 5000)
	failed := ts.failedSpans(t, id)
	signIn(t, ctx, ts)
	within(t, ctx, chromedp.Navigate(ts.URL+"/runs/"+id), visible("#tree .row"))
	assert.Equal(t, "5,000 spans", text(t, ctx, "#span-count"))
	rows := eval[int](t, ctx, `document.querySelectorAll("#tree .row").length`)
	assert.Less(t, rows, 120, "only the rows in view (and a margin) are in the page")
	assert.Greater(t, rows, 20)
	assert.Equal(t, 5000*24, eval[int](t, ctx, `document.querySelector("#tree .spacer").offsetHeight`), "the scroll height holds every row")

	// End selects the last span and scrolls it into view.
	within(t, ctx, chromedp.Focus(chromedp.ID("tree")), chromedp.KeyEvent(kb.Home), chromedp.KeyEvent(kb.End),
		waitJS(`document.querySelector('#tree .row[aria-selected="true"]') !== null`))
	assert.True(t, eval[bool](t, ctx, `(() => { const r = document.querySelector('#tree .row[aria-selected="true"]').getBoundingClientRect(), v = document.querySelector("#tree").getBoundingClientRect(); return r.top >= v.top && r.bottom <= v.bottom + 1; })()`))

	// Every failed span is one "f" away from the previous.
	assert.Equal(t, "Next failed ("+strconv.Itoa(len(failed))+")", text(t, ctx, "#next-failed"))
	within(t, ctx, chromedp.KeyEvent(kb.Home))
	for _, want := range failed[:5] {
		within(t, ctx, chromedp.KeyEvent("f"), waitJS(`location.search.includes("span=`+want+`")`))
	}
	// Collapsing the root leaves one row.
	within(t, ctx, chromedp.KeyEvent(kb.Home), chromedp.KeyEvent(kb.ArrowLeft), waitJS(`document.querySelectorAll("#tree .row").length === 1`))
	assert.Contains(t, text(t, ctx, "#tree .row"), "(+4,999, "+strconv.Itoa(len(failed))+" failed)")
}
