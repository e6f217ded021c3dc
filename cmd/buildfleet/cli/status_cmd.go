package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// statusCmd prints what the manager is doing, from its JSON API: the
// recent requests, or one request with its builders' runners.
func (a *app) statusCmd() *cobra.Command {
	var base string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [REQUEST_ID]",
		Short: "Show recent requests, pools, queue, hosts and release status, or one request with its builders",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if base == "" {
				c, err := a.loadFleet()
				if err != nil {
					return err
				}
				base = "http://" + c.Listen
			}
			u, err := url.Parse(strings.TrimSuffix(base, "/"))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return &exitError{code: 2, msg: fmt.Sprintf("--url must be an http(s) URL, got %q", base)}
			}
			if len(args) == 1 {
				if !requestIDRE.MatchString(args[0]) {
					return &exitError{code: 2, msg: fmt.Sprintf("%q is not a request id (16 hex digits)", args[0])}
				}
				if asJSON {
					return a.rawJSON(cmd.Context(), u.String()+"/api/v1/requests/"+args[0])
				}
				return a.showRequest(cmd.Context(), u.String(), args[0])
			}
			if asJSON {
				return a.overviewJSON(cmd.Context(), u.String())
			}
			return a.overview(cmd.Context(), u.String())
		},
	}
	cmd.Flags().StringVar(&base, "url", "", "manager URL (default: http://<listen> from the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manager's JSON (the same figures as the pages)")
	return cmd
}

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

type apiRunner struct {
	Pool       string `json:"pool"`
	JobID      int64  `json:"job_id"`
	Attempt    int    `json:"attempt"`
	RunnerName string `json:"runner_name"`
	NomadJobID string `json:"nomad_job_id"`
	JobURL     string `json:"job_url"`
	State      string `json:"state"`
	Conclusion string `json:"conclusion"`
}

// apiBuild is one builder's line of a request's timeline.
type apiBuild struct {
	Pool       string    `json:"pool"`
	Result     string    `json:"result"`
	Host       string    `json:"host"`
	Queued     time.Time `json:"queued_at"`
	Placed     time.Time `json:"placed_at"`
	Started    time.Time `json:"started_at"`
	Finished   time.Time `json:"finished_at"`
	Waited     string    `json:"waited"`
	Duration   string    `json:"duration"`
	WaitReason string    `json:"wait_reason"`
	JobURL     string    `json:"job_url"`
}

type apiRequest struct {
	ID        string      `json:"id"`
	Repo      string      `json:"repo"`
	PR        int         `json:"pr"`
	SHA       string      `json:"sha"`
	Tier      string      `json:"tier"`
	Actor     string      `json:"actor"`
	State     string      `json:"state"`
	Reason    string      `json:"reason"`
	RunURL    string      `json:"run_url"`
	CreatedAt time.Time   `json:"created_at"`
	Runners   []apiRunner `json:"runners"`
	Timeline  []apiBuild  `json:"timeline"`
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the manager: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return &exitError{code: 1, msg: "no such request"}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("manager answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("reading the manager's answer: %w", err)
	}
	return nil
}

func (a *app) showRequest(ctx context.Context, base, id string) error {
	var r apiRequest
	if err := getJSON(ctx, base+"/api/v1/requests/"+id, &r); err != nil {
		return err
	}
	sha := r.SHA
	if sha == "" {
		sha = "an unknown commit" // a recovered label whose commit could not be known
	}
	fmt.Fprintf(a.stdout, "request %s: %s PR #%d at %s, tier %s, by %s: %s", r.ID, r.Repo, r.PR, sha, r.Tier, r.Actor, r.State)
	if r.Reason != "" {
		fmt.Fprintf(a.stdout, " (%s)", r.Reason)
	}
	fmt.Fprintln(a.stdout)
	if r.RunURL != "" {
		fmt.Fprintln(a.stdout, "run:", r.RunURL)
	}
	if len(r.Timeline) > 0 {
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BUILDER\tRESULT\tHOST\tQUEUED\tPLACED\tSTARTED\tFINISHED\tWAITED\tDURATION\tWAIT REASON")
		for _, b := range r.Timeline {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Pool, b.Result, dash(b.Host), clock(b.Queued),
				clock(b.Placed), clock(b.Started), clock(b.Finished), dash(b.Waited), dash(b.Duration), dash(b.WaitReason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Runners) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tJOB\tATTEMPT\tRUNNER\tSTATE\tRESULT\tLOG")
	for _, x := range r.Runners {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", x.Pool, x.JobID, x.Attempt, x.RunnerName, x.State, x.Conclusion, x.JobURL)
	}
	return tw.Flush()
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
