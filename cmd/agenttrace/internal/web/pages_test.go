package web

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agenttrace/agenttrace"
)

const rowsJS = `document.querySelectorAll("#runs tbody tr[data-id]").length`

// TestPagesInBrowser ingests runs through the Prefactor exporter into the
// server over loopback, then reads the three pages in headless Chromium as
// a person would: signing in, the runs list with tokens and cost, filters,
// a live run changing status, a run's tree with its failed span, payloads
// and conversation, a narrow window, and the agents page.
func TestPagesInBrowser(t *testing.T) {
	ctx := newBrowser(t, 1400, 900)
	ts := newTestServer(t)
	shots := screenshotDir(t)
	bg := context.Background()

	v1 := ts.tracer(t, "travel-agent", "1.0.0", agenttrace.WithPayloadLimit(16<<10))
	// v2's redactor blanks card numbers, as an application's would.
	redact := func(_ string, _ agenttrace.PayloadField, p []byte) []byte {
		return bytes.ReplaceAll(p, []byte(`"4111 1111 1111 1111"`), []byte(`"[REDACTED]"`))
	}
	v2 := ts.tracer(t, "travel-agent", "2.0.0", agenttrace.WithPayloadLimit(16<<10), agenttrace.WithRedactor(redact))
	travelRun(bg, v1, "user-1", "team-a")
	travelRun(bg, v2, "user-2", "team-b")
	// A failed run, and a live one left running.
	fctx, failedRun := v2.StartInstance(bg)
	_, root := v2.Start(fctx, agenttrace.TypeAgent, map[string]any{"instance": map[string]string{"name": "broken booking", "user_id": "user-3"}})
	_, charge := v2.Start(fctx, agenttrace.TypeTool, map[string]any{"tool_name": "charge_card", "card_number": "4111 1111 1111 1111"})
	charge.Fail(errors.New("card declined"))
	root.Fail(errors.New("booking API refused the card"))
	failedRun.Fail(errors.New("booking API refused the card"))
	lctx, liveRun := v2.StartInstance(bg)
	_, liveRoot := v2.Start(lctx, agenttrace.TypeAgent, map[string]any{"instance": map[string]string{"name": "live chat", "user_id": "user-4"}})
	flush(t, v1)
	flush(t, v2)
	firstID, secondID := ts.runID(t, "Lisbon rainy day user-1"), ts.runID(t, "Lisbon rainy day user-2")
	failedID, liveID := ts.runID(t, "broken booking"), ts.runID(t, "live chat")
	weatherID := ts.failedSpan(t, firstID)
	row := func(id string) string { return `#runs tbody tr[data-id="` + id + `"]` }

	t.Run("sign in", func(t *testing.T) {
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs"), visible("#token"))
		assert.Contains(t, get(t, ctx, chromedp.Location()), "/login?next=%2Fruns")
		within(t, ctx, chromedp.SendKeys(chromedp.ID("token"), "wrong-token"), chromedp.Submit(chromedp.ID("token")), visible(".error"))
		assert.Contains(t, text(t, ctx, ".error"), "not this server's")
		within(t, ctx, chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.Submit(chromedp.ID("token")), visible(row(firstID)))
		assert.True(t, strings.HasSuffix(get(t, ctx, chromedp.Location()), "/runs"))
		// The session cookie is HttpOnly: the page's script cannot read it.
		assert.NotContains(t, eval[string](t, ctx, `document.cookie`), CookieName)
	})

	t.Run("runs list", func(t *testing.T) {
		got := text(t, ctx, row(firstID))
		for _, want := range []string{"Lisbon rainy day user-1", "travel-agent", "v1 · 1.0.0", "complete", "user-1", "team-a", "web",
			"5 (1 failed)", "1,234", "0.003595 USD", "412 ms"} {
			assert.Contains(t, got, want)
		}
		assert.Contains(t, text(t, ctx, row(secondID)), "v2 · 2.0.0")
		assert.Equal(t, "failed", text(t, ctx, row(failedID)+` [data-status]`))
		assert.Equal(t, "active", text(t, ctx, row(liveID)+` [data-status]`))
		assert.Equal(t, "4 runs · page 1 of 1", text(t, ctx, "#runs-summary"))
		screenshot(t, ctx, shots, "runs")
	})

	t.Run("live run changes status", func(t *testing.T) {
		liveRoot.End()
		liveRun.End()
		flush(t, v2)
		within(t, ctx, visible(row(liveID)+`[data-status="complete"]`))
		assert.Contains(t, eval[string](t, ctx, `document.getElementById("live").textContent`), "is now complete")
	})

	t.Run("filters narrow the list", func(t *testing.T) {
		within(t, ctx, chromedp.SendKeys(chromedp.ID("f-user"), "user-2"+kb.Enter),
			waitJS(`location.search === "?user=user-2" && `+rowsJS+` === 1`), visible(row(secondID)))
		assert.Contains(t, get(t, ctx, chromedp.Location()), "/runs?user=user-2") // a stable URL for the filtered list

		within(t, ctx, chromedp.Navigate(ts.URL+"/runs?status=failed"), visible(row(failedID)))
		assert.Equal(t, 1, eval[int](t, ctx, rowsJS))
		assert.Equal(t, "failed", get(t, ctx, chromedp.Value(chromedp.ID("f-status"))))

		within(t, ctx, chromedp.Navigate(ts.URL+"/runs?search=lisbon"), waitJS(rowsJS+` === 2`))
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs?sort=asc"), waitJS(rowsJS+` === 4`))
		assert.Equal(t, firstID, eval[string](t, ctx, `document.querySelector("#runs tbody tr").dataset.id`), "oldest first")
		// A time range after every run selects none.
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs?from=2999-01-01T00:00:00Z"),
			waitJS(`document.querySelector("#runs-summary").textContent === "0 runs"`))
	})

	t.Run("run page", func(t *testing.T) {
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs"), visible(row(firstID)+" a"), chromedp.Click(chromedp.CSS(row(firstID)+" a")),
			visible(`#tree .row[data-status="failed"]`))
		facts := text(t, ctx, "#run-facts")
		for _, want := range []string{"travel-agent", "user-1", "1,234 (1,166 in · 68 out)", "0.003595 USD", "412 ms", "5 · 4 complete · 1 failed"} {
			assert.Contains(t, facts, want)
		}
		assert.Equal(t, 5, eval[int](t, ctx, `document.querySelectorAll("#tree .row").length`))
		assert.Equal(t, 5, eval[int](t, ctx, `document.querySelectorAll("#tree .row .bar").length`), "a waterfall bar per span")

		// "f" jumps to the failed span and shows its error.
		within(t, ctx, chromedp.Focus(chromedp.ID("tree")), chromedp.KeyEvent("f"), visible("#span-error"))
		assert.Contains(t, text(t, ctx, "#span-error"), "weather service timed out after 5s")
		assert.Contains(t, get(t, ctx, chromedp.Location()), "span="+weatherID)
		assert.Contains(t, text(t, ctx, "#payload"), `"Lisbon"`)

		// The keyboard walks the tree: up from the failed tool is the planning call.
		within(t, ctx, chromedp.KeyEvent(kb.ArrowUp), visible("#conversation"))
		conv := text(t, ctx, "#conversation")
		for _, want := range []string{"You are a travel assistant.", "Plan a rainy-day afternoon in Lisbon", "tool call get_weather", "call_places"} {
			assert.Contains(t, conv, want)
		}
		detail := text(t, ctx, "#span-detail")
		assert.Contains(t, detail, "834 (800 in · 34 out)")
		assert.Contains(t, detail, "0.00234 USD")

		// The over-cap result is marked truncated.
		within(t, ctx, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), visible(`#span-detail [data-marker="truncated"]`))
		assert.Contains(t, text(t, ctx, `#span-detail [data-marker="truncated"]`), "truncated")

		// The root rolls its subtree up; collapsing it hides the children.
		within(t, ctx, chromedp.KeyEvent(kb.Home), waitJS(`document.querySelector("#span-detail").textContent.includes("Subtree")`))
		assert.Contains(t, text(t, ctx, "#span-detail"), "5 spans, 1 failed · 1,234 tokens · 0.003595 USD")
		within(t, ctx, chromedp.KeyEvent(kb.ArrowLeft), waitJS(`document.querySelectorAll("#tree .row").length === 1`))
		assert.Contains(t, text(t, ctx, "#tree .row"), "(+4, 1 failed)")
		within(t, ctx, chromedp.KeyEvent(kb.ArrowRight), waitJS(`document.querySelectorAll("#tree .row").length === 5`))
		within(t, ctx, chromedp.KeyEvent("f"), visible("#span-error"))
		screenshot(t, ctx, shots, "run")

		// Find in the tree.
		within(t, ctx, chromedp.SendKeys(chromedp.ID("span-search"), "search_pl"),
			waitJS(`document.querySelectorAll("#tree .row.match").length === 1`))
		assert.Contains(t, text(t, ctx, "#tree .row.match"), "search_places")
		assert.Equal(t, "1 matching spans (Enter: next)", text(t, ctx, "#span-count"))

		// A deep link opens the span.
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs/"+firstID+"?span="+weatherID), visible("#span-error"))
		assert.Contains(t, text(t, ctx, "#span-error"), "weather service timed out")
	})

	t.Run("redacted payload", func(t *testing.T) {
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs/"+failedID), visible(`#tree .row[data-status="failed"]`),
			chromedp.Click(chromedp.CSS(`#tree .row[data-id="`+ts.failedSpans(t, failedID)[1]+`"]`)), visible(`#span-detail [data-marker="redacted"]`))
		assert.Contains(t, text(t, ctx, `#span-detail [data-marker="redacted"]`), "redacted (1 value)")
		assert.NotContains(t, text(t, ctx, "#payload"), "4111")
		assert.Equal(t, "Next failed (2)", text(t, ctx, "#next-failed"))
	})

	t.Run("narrow window", func(t *testing.T) {
		within(t, ctx, chromedp.EmulateViewport(420, 860),
			chromedp.Navigate(ts.URL+"/runs/"+firstID+"?span="+weatherID), visible("#span-error"))
		assert.True(t, eval[bool](t, ctx, `document.querySelector("#span-detail").getBoundingClientRect().top >= document.querySelector(".trace").getBoundingClientRect().bottom`),
			"the span detail goes below the tree")
		assert.True(t, eval[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth`), "no horizontal page scroll")
		screenshot(t, ctx, shots, "run-narrow")
		within(t, ctx, chromedp.EmulateViewport(1400, 900))
	})

	t.Run("agents page", func(t *testing.T) {
		within(t, ctx, chromedp.Navigate(ts.URL+"/agents"), visible(`section[data-agent] svg.chart`))
		assert.Contains(t, text(t, ctx, "#agents"), "4 runs · 0 active · 3 complete · 1 failed")
		versions := eval[[]string](t, ctx, `[...document.querySelectorAll("#agents tbody tr")].map(r => [...r.cells].map(c => c.textContent.trim()).join("|"))`)
		require.Len(t, versions, 2)
		assert.Contains(t, versions[0], "v1")
		assert.Contains(t, versions[0], "|1|0|0|1|0|0|1,234|0.003595 USD")
		assert.Contains(t, versions[1], "v2")
		assert.Contains(t, versions[1], "|3|0|0|2|1|0|1,234|0.003595 USD")
		screenshot(t, ctx, shots, "agents")
		// A version links to its runs.
		within(t, ctx, chromedp.Click(chromedp.CSS(`#agents tbody tr:nth-child(2) a`)),
			waitJS(`location.pathname === "/runs" && `+rowsJS+` === 3`))
	})

	t.Run("live run page", func(t *testing.T) {
		rctx, run := v1.StartInstance(bg)
		actx, agent := v1.Start(rctx, agenttrace.TypeAgent, map[string]any{"instance": map[string]string{"name": "live page"}})
		_, step := v1.Start(actx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "slow_tool"})
		flush(t, v1)
		id := ts.runID(t, "live page")
		within(t, ctx, chromedp.Navigate(ts.URL+"/runs/"+id), visible(`h1 [data-status="active"]`), visible("#tree .row .bar.open"))
		assert.Equal(t, 2, eval[int](t, ctx, `document.querySelectorAll("#tree .row").length`))
		// A span appears and the run finishes, with no reload.
		_, late := v1.Start(actx, agenttrace.TypeTool, agenttrace.ToolInput{Name: "late_tool"})
		late.End()
		step.End()
		agent.End()
		run.End()
		flush(t, v1)
		within(t, ctx, visible(`h1 [data-status="complete"]`), waitJS(`document.querySelectorAll("#tree .row").length === 3`))
		assert.Contains(t, eval[string](t, ctx, `document.getElementById("live").textContent`), "now complete")
	})
}
