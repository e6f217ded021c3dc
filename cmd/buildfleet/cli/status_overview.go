package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// The parts of the status overview, each one of the manager's JSON
// endpoints: the same figures as the pages.
var overviewParts = []struct{ key, path string }{
	{"requests", "/api/v1/requests"},
	{"queue", "/api/v1/queue"},
	{"hosts", "/api/v1/hosts"},
	{"summary", "/api/v1/summary"},
}

// overviewJSON prints the manager's answers as one JSON object: requests
// and pools, queue, hosts and the release status per tier.
func (a *app) overviewJSON(ctx context.Context, base string) error {
	out := map[string]json.RawMessage{}
	for _, p := range overviewParts {
		var raw json.RawMessage
		if err := getJSON(ctx, base+p.path, &raw); err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		out[p.key] = raw
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (a *app) rawJSON(ctx context.Context, u string) error {
	var raw json.RawMessage
	if err := getJSON(ctx, u, &raw); err != nil {
		return err
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(raw)
}

type apiPool struct {
	Name       string `json:"name"`
	Tier       string `json:"tier"`
	Stable     bool   `json:"stable"`
	MaxRunners int    `json:"max_runners"`
	Pending    *int   `json:"pending"`
	Running    *int   `json:"running"`
}

type apiWaiting struct {
	RequestID string `json:"request_id"`
	Pool      string `json:"pool"`
	JobID     int64  `json:"job_id"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Age       string `json:"age"`
}

type apiHost struct {
	Name     string            `json:"name"`
	Owner    string            `json:"owner"`
	Contact  string            `json:"contact"`
	Platform string            `json:"platform"`
	Tiers    string            `json:"tiers"`
	Health   string            `json:"health"`
	Slots    int               `json:"slots"`
	Used     int               `json:"used"`
	LastSeen time.Time         `json:"last_seen"`
	Failures []json.RawMessage `json:"failures"`
	Notices  []json.RawMessage `json:"notices"`
}

type apiTier struct {
	Tier    string   `json:"tier"`
	Green   bool     `json:"green"`
	Stable  int      `json:"stable_builders"`
	Failing []string `json:"failing"`
	Missing []string `json:"missing_hosts"`
}

// overview prints the recent requests, the pools, the queue, the hosts and
// the release status as tables. A part the manager cannot give (an older
// manager, Nomad down) is said to be unavailable; the rest still prints.
func (a *app) overview(ctx context.Context, base string) error {
	var reqs struct {
		Requests []apiRequest `json:"requests"`
		Pools    []apiPool    `json:"pools"`
	}
	if err := getJSON(ctx, base+"/api/v1/requests", &reqs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tREPO\tPR\tSHA\tTIER\tACTOR\tSTATE\tAGE")
	for _, r := range reqs.Requests {
		state := r.State
		if r.State == "done" && r.Reason != "" {
			state += " (" + r.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t#%d\t%.10s\t%s\t%s\t%s\t%s\n", r.ID, r.Repo, r.PR, r.SHA, r.Tier, r.Actor, state, age(r.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(a.stdout, "\nPOOLS")
	tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tTIER\tSTABLE\tMAX\tPENDING\tRUNNING")
	for _, p := range reqs.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\n", p.Name, p.Tier, p.Stable, p.MaxRunners, count(p.Pending), count(p.Running))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(a.stdout, "\nQUEUE")
	var q struct {
		Queue []apiWaiting `json:"queue"`
	}
	switch err := getJSON(ctx, base+"/api/v1/queue", &q); {
	case err != nil:
		fmt.Fprintln(a.stdout, "not available:", err)
	case len(q.Queue) == 0:
		fmt.Fprintln(a.stdout, "nothing waits for a host")
	default:
		tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WAITING\tBUILDER\tREQUEST\tJOB\tSTATE\tREASON")
		for _, w := range q.Queue {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", w.Age, w.Pool, w.RequestID, w.JobID, w.State, w.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(a.stdout, "\nHOSTS")
	var h struct {
		Hosts []apiHost `json:"hosts"`
	}
	switch err := getJSON(ctx, base+"/api/v1/hosts", &h); {
	case err != nil:
		fmt.Fprintln(a.stdout, "not available:", err)
	case len(h.Hosts) == 0:
		fmt.Fprintln(a.stdout, "no hosts")
	default:
		tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tOWNER\tCONTACT\tPLATFORM\tTIERS\tHEALTH\tSLOTS\tLAST SEEN\tFAILURES\tNOTICES")
		for _, x := range h.Hosts {
			slots := fmt.Sprint(x.Used)
			if x.Slots > 0 {
				slots += "/" + fmt.Sprint(x.Slots)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", x.Name, dash(x.Owner), dash(x.Contact), dash(x.Platform),
				dash(x.Tiers), x.Health, slots, age(x.LastSeen), len(x.Failures), len(x.Notices))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(a.stdout, "\nRELEASE STATUS")
	var sum struct {
		Tiers []apiTier `json:"tiers"`
	}
	if err := getJSON(ctx, base+"/api/v1/summary", &sum); err != nil {
		fmt.Fprintln(a.stdout, "not available:", err)
		return nil
	}
	for _, t := range sum.Tiers {
		verdict := "not every stable builder has a verdict"
		switch {
		case t.Green:
			verdict = "all stable builders green"
		case len(t.Failing) > 0:
			verdict = "failing: " + strings.Join(t.Failing, ", ")
		case t.Stable == 0:
			verdict = "no stable builders"
		}
		line := t.Tier + ": " + verdict
		if len(t.Missing) > 0 {
			line += "; hosts missing or out: " + strings.Join(t.Missing, ", ")
		}
		fmt.Fprintln(a.stdout, line)
	}
	return nil
}

func count(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}
