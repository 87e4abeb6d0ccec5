package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds a Chromium: AGENTTRACE_CHROMIUM, else Debian's
// chromium or another common name on PATH.
func chromiumPath() string {
	if p := os.Getenv("AGENTTRACE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, closed at
// cleanup. The test skips, saying why, only when no browser can be had.
func newBrowser(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium found: install Debian's chromium package (apt-get install -y chromium) or set AGENTTRACE_CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Skipf("Chromium at %s could not be started: %v", path, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// stepTimeout bounds a browser step: generous, it only stops a hang.
const stepTimeout = 30 * time.Second

// within runs browser steps.
func within(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(c, steps...))
}

// get runs a browser action and returns its value.
func get[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(c, a)
	require.NoError(t, err)
	return v
}

// text is the rendered text of the first element matching the CSS selector.
func text(t testing.TB, ctx context.Context, css string) string {
	t.Helper()
	return get(t, ctx, chromedp.Text(chromedp.CSS(css)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, chromedp.Evaluate[T](expr))
}

// screenshotDir is where the pages' screenshots go: AGENTTRACE_SCREENSHOTS,
// else a directory under the test's TempDir.
func screenshotDir(t testing.TB) string {
	dir := os.Getenv("AGENTTRACE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	buf := get(t, ctx, chromedp.CaptureScreenshot())
	p := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(p, buf, 0o644))
	t.Logf("screenshot %s", p)
}

// waitJS waits until the JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))
}

// visible waits until an element matching the CSS selector is visible.
func visible(css string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(css))
}
