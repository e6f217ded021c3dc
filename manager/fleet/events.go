package fleet

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// jobEvent is the part of GitHub's workflow_job payload the fleet reads.
// Only manager/github imports go-github, so payloads have their own types.
type jobEvent struct {
	Action      string `json:"action"`
	WorkflowJob struct {
		ID         int64    `json:"id"`
		RunID      int64    `json:"run_id"`
		Name       string   `json:"name"`
		Labels     []string `json:"labels"`
		HTMLURL    string   `json:"html_url"`
		Conclusion *string  `json:"conclusion"`
		RunnerName *string  `json:"runner_name"`
	} `json:"workflow_job"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	// ScaleSet names the runner request of a delivery the scale-set
	// source made (nil for webhooks).
	ScaleSet *struct {
		RequestID int64 `json:"runner_request_id"`
	} `json:"scale_set"`
	// receivedAt is when the delivery was stored (manager overhead).
	receivedAt time.Time
}

// parseJob decodes a workflow_job payload. Errors are permanent: a
// redelivery carries the same bytes.
func parseJob(b []byte) (jobEvent, error) {
	var e jobEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("workflow_job payload: %w", err)
	}
	if e.WorkflowJob.ID <= 0 || e.WorkflowJob.RunID <= 0 {
		return e, fmt.Errorf("workflow_job payload: missing workflow_job.id or run_id")
	}
	return e, nil
}

// runnerName is a runner's unique name on GitHub and in Nomad: the pool,
// the job and the attempt, in the characters Nomad's variable paths allow,
// at most 64.
func runnerName(pool string, jobID int64, attempt int) string {
	tail := fmt.Sprintf("-%d-%d", jobID, attempt)
	p := []byte(pool)
	for i, c := range p {
		ok := c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			p[i] = '-'
		}
	}
	if max := 64 - len("bf-") - len(tail); len(p) > max {
		p = p[:max]
	}
	return "bf-" + string(p) + tail
}

// statusOf maps a job's conclusion to a commit status and description.
// Only the job's own failure is "failure" (the PR's fault); a cancelled job
// or an unknown conclusion is "error", never blamed on the PR.
func statusOf(conclusion string) (state, description string) {
	switch conclusion {
	case "success", "neutral", "skipped":
		return "success", "build " + conclusion
	case "failure", "timed_out":
		return "failure", "build " + strings.ReplaceAll(conclusion, "_", " ")
	case "cancelled":
		return "error", "cancelled"
	default:
		return "error", "job ended as " + conclusion
	}
}
