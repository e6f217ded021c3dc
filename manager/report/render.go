package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// maxDescription is GitHub's limit on a status description.
const maxDescription = 140

// fleetError prefixes the reason of an error result, so that nobody reads
// it as the PR's fault.
const fleetError = "fleet error, not this PR: "

func duration(r Result) time.Duration {
	if r.StartedAt.IsZero() || r.CompletedAt.Before(r.StartedAt) {
		return 0
	}
	return r.CompletedAt.Sub(r.StartedAt).Round(time.Second)
}

// statusOf gives a commit status's state and description (≤ 140 runes).
func statusOf(r Result) (string, string) {
	desc := r.Description
	switch {
	case r.State == StateError:
		desc = fleetError + desc
	case r.Final() && duration(r) > 0:
		desc += " in " + duration(r).String()
	}
	if rs := []rune(desc); len(rs) > maxDescription {
		desc = string(rs[:maxDescription-1]) + "…"
	}
	return r.State, desc
}

// conclusion maps a final result to a check run conclusion. A fleet
// failure is neutral: grey, not a verdict on the PR, and it does not fail
// a check suite; cancelled is kept for a job GitHub cancelled.
func conclusion(r Result) string {
	switch r.State {
	case StateSuccess:
		return "success"
	case StateFailure:
		return "failure"
	}
	if r.Conclusion == "cancelled" {
		return "cancelled"
	}
	return "neutral"
}

func externalID(r Result) string { return r.Request.ID + "/" + r.Pool }

// checkRunOf gives the check run of a result.
func checkRunOf(row store.Report, r Result, now time.Time) github.CheckRun {
	cr := github.CheckRun{Name: row.Context, HeadSHA: row.SHA, ExternalID: externalID(r), DetailsURL: r.HTMLURL,
		StartedAt: r.StartedAt}
	switch {
	case !r.Final() && r.StartedAt.IsZero():
		cr.Status, cr.Title = "queued", "Queued"
	case !r.Final():
		cr.Status, cr.Title = "in_progress", "Running"
		if r.Host != "" {
			cr.Title += " on " + r.Host
		}
	default:
		cr.Status, cr.Conclusion, cr.CompletedAt = "completed", conclusion(r), r.CompletedAt
		if cr.CompletedAt.IsZero() {
			cr.CompletedAt = now
		}
		cr.Title = strings.ToUpper(cr.Conclusion[:1]) + cr.Conclusion[1:]
		if r.State == StateError {
			cr.Title = "Fleet error (not a failure of this PR)"
		}
	}
	cr.Summary = checkSummary(r)
	return cr
}

func checkSummary(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| | |\n|---|---|\n| tier | %s |\n| requested by | %s |\n| commit | %s |\n", r.Request.Tier,
		mention(r.Request.Actor), r.Request.SHA)
	if r.Host != "" {
		fmt.Fprintf(&b, "| host | %s |\n", r.Host)
	}
	if d := duration(r); d > 0 {
		fmt.Fprintf(&b, "| duration | %s |\n", d)
	}
	if r.Description != "" {
		fmt.Fprintf(&b, "| reason | %s |\n", oneLine(r.Description))
	}
	if r.State == StateError {
		b.WriteString("\nThe fleet could not give a verdict on this builder (a problem of the build machines, not of this PR). Add the label again to retry.\n")
	}
	return b.String()
}

func mention(actor string) string {
	if name, ok := strings.CutPrefix(actor, "operator:"); ok {
		return "operator " + name
	}
	if actor == "" {
		return "—"
	}
	return "@" + actor
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "|", "\\|").Replace(s)
}

// summaryMarker is hidden in the summary comment, so that a restart finds
// it instead of posting it twice. It differs from the trigger's marker.
func summaryMarker(id string) string { return "<!-- buildfleet:summary=" + id + " -->" }

var icons = map[string]string{StateSuccess: "✅", StateFailure: "❌", StateError: "⚠️", StatePending: "⏳"}

// summaryComment lists each builder's result, duration and log link.
func summaryComment(req Request, rows []store.Report) (string, error) {
	var b strings.Builder
	var lines []string
	count := map[string]int{}
	for _, row := range rows {
		if row.Kind == "comment" {
			continue
		}
		var r Result
		if err := json.Unmarshal(row.Payload, &r); err != nil {
			return "", fmt.Errorf("decoding result %s of %s: %w", row.Context, row.RequestID, err)
		}
		count[r.State]++
		d := "—"
		if dd := duration(r); dd > 0 {
			d = dd.String()
		}
		link := "—"
		if r.HTMLURL != "" {
			link = "[log](" + r.HTMLURL + ")"
		}
		result := r.State
		if r.State == StateError {
			result = "fleet error: " + oneLine(r.Description)
		}
		lines = append(lines, fmt.Sprintf("| `%s` | %s %s | %s | %s |", row.Context, icons[r.State], result, d, link))
	}
	sha := req.SHA
	if len(sha) > 10 {
		sha = sha[:10]
	}
	fmt.Fprintf(&b, "🔨 **buildfleet**: the **%s** build of %s requested by %s has finished: %d passed, %d failed, %d fleet error(s).\n\n",
		req.Tier, sha, mention(req.Actor), count[StateSuccess], count[StateFailure], count[StateError])
	b.WriteString("| builder | result | duration | log |\n|---|---|---|---|\n")
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n\nA fleet error (⚠️) is a problem of the build machines, not of this PR. These results are informative: none is required to merge.\n")
	b.WriteString(summaryMarker(req.ID))
	return b.String(), nil
}
