package status_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where the browser tests keep their screenshots:
// $BUILDFLEET_SCREENSHOTS when set (CI keeps it as an artifact), else the
// test's temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("BUILDFLEET_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserPages opens every page in headless Chromium, at a desktop
// width and at a phone's, with the rich fixture's data (requests done,
// failed and waiting; hosts ready, missing, drained and disabled), and
// checks what the page shows as the browser renders it.
func TestBrowserPages(t *testing.T) {
	f := newRichFixture(t)
	bctx := newBrowser(t)
	dir := screenshotDir(t)
	type check struct{ js, want string }
	pages := []struct {
		name, path, ready string
		checks            []check
	}{
		{"grid", "/grid", "#grid", []check{
			{`document.querySelectorAll("#grid tbody tr").length`, "2"},
			{`document.querySelectorAll("#grid thead th.col").length`, "3"},
			{`document.querySelector('#grid tr[data-pool="ubuntu-quick"] td:nth-of-type(2)').className`, "cell result-failure"},
			{`document.querySelector('#grid tr[data-pool="ubuntu-quick"] td:nth-of-type(2) a').href`,
				"https://github.example/python/cpython/actions/runs/500/job/2ubuntu-quick"},
			// Colours come from the stylesheet under the CSP.
			{`getComputedStyle(document.querySelector("td.result-failure")).backgroundColor`, "rgb(207, 34, 46)"},
			{`getComputedStyle(document.querySelector("td.result-success")).backgroundColor`, "rgb(26, 127, 55)"},
		}},
		{"grid-stable", "/grid?stable=stable", "#grid", []check{
			{`Array.from(document.querySelectorAll("#grid tbody tr")).map(r => r.dataset.pool).join(",")`, "ubuntu-quick"},
		}},
		{"builder", "/builders/ubuntu-quick", "#builds", []check{
			{`document.querySelector("#passrate").innerText.split(" (")[0]`, "50 %"},
			{`document.querySelector("#median").innerText`, "24m52s"},
			{`document.querySelectorAll("#builds tbody tr").length`, "3"},
			{`document.querySelectorAll("#builder-hosts tbody tr").length`, "4"},
		}},
		{"request", "/requests/" + passedID, "#timeline", []check{
			{`document.querySelector('#timeline tr[data-pool="ubuntu-quick"] td.host').innerText`, "donor-a"},
			{`Array.from(document.querySelectorAll('#timeline tr[data-pool="ubuntu-quick"] td')).slice(3, 10).map(c => c.innerText).join(" ")`,
				"09:00:02 09:00:05 09:00:05 09:00:09 09:20:00 3s 19m51s"},
		}},
		{"request-waiting", "/requests/" + f.good.ID, "#timeline", []check{
			{`document.querySelector('#timeline tr[data-pool="macos-refleak"] td.reason').innerText`, "no eligible host: 1 node ineligible"},
		}},
		{"queue", "/queue", "#queue", []check{
			{`document.querySelectorAll("#queue tbody tr").length`, "1"},
			{`document.querySelector("#queue td.reason").innerText`, "no eligible host: 1 node ineligible"},
		}},
		{"hosts", "/hosts", "#hosts", []check{
			{`document.querySelectorAll("#hosts tbody tr").length`, "4"},
			{`document.querySelector("#host-donor-a a").href`, "mailto:ann@example.org"},
			{`document.querySelector("#host-donor-b .health").innerText`, "missing"},
			{`document.querySelector("#host-donor-c .health").innerText`, "drained"},
			{`document.querySelector("#host-donor-d .health").innerText`, "disabled"},
			{`document.querySelector("#host-donor-d td.failures").innerText.split("\n")[0]`, "3"},
			{`document.querySelector("#host-donor-d td.notices").innerText.trim()`, "2025-03-01 11:00:00Z ineligible by webhook: sent"},
		}},
		{"summary", "/summary", "#tier-quick", []check{
			{`document.querySelector("#tier-quick h2").innerText`, "quick: 1 stable builder(s) failing"},
			{`document.querySelector("#tier-quick .missing").innerText`, "Hosts missing or out of scheduling: donor-b, donor-d"},
		}},
	}
	for _, width := range []int64{1280, 390} {
		if err := chromedp.Run(bctx, chromedp.EmulateViewport(width, 900)); err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			t.Run(p.name+"@"+itoa(width), func(t *testing.T) {
				got := make([]string, len(p.checks))
				var scripts, overflow string
				var png []byte
				actions := []chromedp.Action{
					chromedp.Navigate(f.srv.URL + p.path),
					chromedp.WaitVisible(p.ready, chromedp.ByQuery),
					chromedp.Evaluate(`String(document.querySelectorAll("script").length)`, &scripts),
					// Readable on a phone: wide tables scroll in their own
					// box; the page itself never scrolls sideways.
					chromedp.Evaluate(`String(document.documentElement.scrollWidth > window.innerWidth)`, &overflow),
				}
				for i, c := range p.checks {
					actions = append(actions, chromedp.Evaluate(`String(`+c.js+`)`, &got[i]))
				}
				actions = append(actions, chromedp.FullScreenshot(&png, 100))
				if err := chromedp.Run(bctx, actions...); err != nil {
					t.Fatalf("%s: %v", p.path, err)
				}
				for i, c := range p.checks {
					if strings.TrimSpace(got[i]) != c.want {
						t.Errorf("%s: %s = %q, want %q", p.path, c.js, got[i], c.want)
					}
				}
				if scripts != "0" {
					t.Errorf("%s has %s script elements", p.path, scripts)
				}
				if overflow != "false" {
					t.Errorf("%s scrolls sideways at %d px", p.path, width)
				}
				name := filepath.Join(dir, p.name+"-"+itoa(width)+".png")
				if err := os.WriteFile(name, png, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	t.Logf("screenshots in %s", dir)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
