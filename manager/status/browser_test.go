package status_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// TestBrowser drives a real headless Chromium: the list renders, a request
// link leads to its page, and no script from a hostile value is in the DOM.
func TestBrowser(t *testing.T) {
	f := newFixture(t, nil)
	bctx := newBrowser(t)

	var title, scripts, headerBG, sha, state, runHref string
	var rows int
	err := chromedp.Run(bctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(`#requests`, chromedp.ByQuery),
		chromedp.Title(&title),
		chromedp.Evaluate(`String(document.querySelectorAll("script").length)`, &scripts),
		chromedp.Evaluate(`document.querySelectorAll("#requests tbody tr").length`, &rows),
		// The embedded stylesheet loads under the page's CSP.
		chromedp.Evaluate(`getComputedStyle(document.querySelector("header")).backgroundColor`, &headerBG),
		chromedp.Click(`a.request[href="/requests/`+f.good.ID+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#sha`, chromedp.ByQuery),
		chromedp.Text(`#sha`, &sha, chromedp.ByQuery),
		chromedp.Text(`#state`, &state, chromedp.ByQuery),
		chromedp.AttributeValue(`#run`, "href", &runHref, nil, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if title != "buildfleet" || rows != 2 {
		t.Errorf("list: title %q, %d rows", title, rows)
	}
	if headerBG != "rgb(36, 41, 47)" {
		t.Errorf("stylesheet not applied: header background %q", headerBG)
	}
	if scripts != "0" {
		t.Errorf("list has %s script elements: a hostile value became markup", scripts)
	}
	if strings.TrimSpace(sha) != f.good.SHA || strings.TrimSpace(state) != "dispatched" {
		t.Errorf("detail page: sha %q, state %q", sha, state)
	}
	if runHref != "https://github.example/python/cpython/actions/runs/777" {
		t.Errorf("run link %q", runHref)
	}
}

// newBrowser starts a headless Chromium for the test; it is closed (and
// waited for) when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	profile := browserProfile(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Cancelling the browser context closes Chromium and waits for it, so
	// that the user data dir can be removed (cleanups run last first).
	t.Cleanup(cancel)
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelBrowser)
	return bctx
}

// browserProfile is a fresh user data dir for Chromium. Chromium's helper
// processes may still write to it for a moment after the browser exits, so
// it is removed with a few retries rather than by t.TempDir's single try.
func browserProfile(t *testing.T) string {
	dir, err := os.MkdirTemp("", "buildfleet-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if i == 20 {
				t.Logf("leaving Chromium profile %s: %v", dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}
