package scaleset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/actions/actions-runner-controller/github/actions"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// jobRef is the job a runner request stands for.
type jobRef struct {
	Job  github.Job
	Repo string
}

// errRetry keeps a message in the queue: it is read again later.
var errRetry = errors.New("not yet")

// Payload is the workflow_job delivery a job message becomes: GitHub's
// webhook shape for the fields the fleet reads, and the scale set's
// request, which the fleet acquires for the set.
type Payload struct {
	Action      string      `json:"action"`
	WorkflowJob PayloadJob  `json:"workflow_job"`
	Repository  PayloadRepo `json:"repository"`
	ScaleSet    *Request    `json:"scale_set"`
}

// PayloadJob is the workflow_job object of a Payload.
type PayloadJob struct {
	ID         int64    `json:"id"`
	RunID      int64    `json:"run_id"`
	Name       string   `json:"name"`
	Labels     []string `json:"labels"`
	HTMLURL    string   `json:"html_url"`
	Status     string   `json:"status"`
	Conclusion *string  `json:"conclusion"`
	RunnerName *string  `json:"runner_name"`
}

// PayloadRepo is the repository object of a Payload.
type PayloadRepo struct {
	FullName string `json:"full_name"`
}

// Request names a job's runner request in a scale set.
type Request struct {
	Pool      string `json:"pool"`
	SetID     int    `json:"set_id"`
	RequestID int64  `json:"runner_request_id"`
}

// handle turns a RunnerScaleSetJobMessages message into deliveries and
// stores them. A job of a run buildfleet did not dispatch gives nothing.
func (l *listener) handle(ctx context.Context, m *actions.RunnerScaleSetMessage) error {
	if m.MessageType != "RunnerScaleSetJobMessages" || m.Body == "" {
		return nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(m.Body), &raws); err != nil {
		l.log.Warn("message body is not a list of job messages; skipped", "message", m.MessageId, "err", err)
		return nil
	}
	var ds []store.Delivery
	for _, raw := range raws {
		var msg struct {
			actions.JobMessageBase
			Result     string `json:"result"`
			RunnerName string `json:"runnerName"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil {
			l.log.Warn("job message skipped", "message", m.MessageId, "err", err)
			continue
		}
		var action, conclusion string
		switch msg.MessageType {
		case "JobAvailable":
			action = "queued"
		case "JobStarted":
			action = "in_progress"
		case "JobCompleted":
			action, conclusion = "completed", conclusionOf(msg.Result)
		default:
			continue // JobAssigned: the fleet acquired it; nothing to do
		}
		ref, ok, err := l.resolve(ctx, msg.JobMessageBase)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		d, err := l.delivery(action, msg.RunnerRequestId, ref, msg.RunnerName, conclusion)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	return l.store(ctx, ds)
}

func (l *listener) store(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	if _, err := l.o.Store.PutDeliveries(ctx, ds); err != nil {
		return err
	}
	// Mark the jobs that have their queued delivery: adopt leaves them be.
	for _, d := range ds {
		var p Payload
		if json.Unmarshal(d.Payload, &p) == nil && p.Action == "queued" {
			if err := l.o.Store.PutKV(ctx, jobKey(p.WorkflowJob.ID), d.ID); err != nil {
				return err
			}
		}
	}
	l.o.Notify()
	return nil
}

func jobKey(id int64) string { return "scaleset.job." + strconv.FormatInt(id, 10) }

// conclusionOf maps the service's task result to a job conclusion.
func conclusionOf(result string) string {
	switch strings.ToLower(result) {
	case "succeeded", "succeededwithissues":
		return "success"
	case "failed":
		return "failure"
	case "canceled", "cancelled", "abandoned":
		return "cancelled"
	case "skipped":
		return "skipped"
	}
	return strings.ToLower(result)
}

// resolve finds the job a message speaks of, if its run is one buildfleet
// dispatched: the message names the run and the job's display name.
func (l *listener) resolve(ctx context.Context, msg actions.JobMessageBase) (jobRef, bool, error) {
	if ref, ok := l.cached(msg.RunnerRequestId); ok {
		return ref, true, nil
	}
	repo := msg.OwnerName + "/" + msg.RepositoryName
	if !strings.EqualFold(repo, l.repo) {
		return jobRef{}, false, nil
	}
	ours, err := l.ours(ctx, msg.WorkflowRunId)
	if err != nil || !ours {
		return jobRef{}, false, err
	}
	j, found, err := l.runs.job(ctx, msg.OwnerName, msg.RepositoryName, msg.WorkflowRunId, msg.JobDisplayName)
	if err != nil {
		return jobRef{}, false, fmt.Errorf("%w: %w", errRetry, err)
	}
	if !found {
		return jobRef{}, false, fmt.Errorf("%w: run %d has no job %q", errRetry, msg.WorkflowRunId, msg.JobDisplayName)
	}
	ref := jobRef{Job: j, Repo: l.repo}
	l.remember(msg.RunnerRequestId, ref)
	return ref, true, nil
}

// ours tells whether buildfleet dispatched the run; while a dispatch is
// between GitHub's answer and the stored run id, it cannot tell yet.
func (l *listener) ours(ctx context.Context, runID int64) (bool, error) {
	req, err := l.o.Store.RequestByRun(ctx, runID)
	if err == nil {
		return strings.EqualFold(req.Repo, l.repo), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	open, err := l.o.Store.OpenRequests(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range open {
		if r.RunID == runID {
			// Recorded between the two reads.
			return strings.EqualFold(r.Repo, l.repo), nil
		}
		if r.State != trigger.StateDispatched && r.DispatchTries > 0 {
			return false, fmt.Errorf("%w: run %d may be a dispatch in flight", errRetry, runID)
		}
	}
	return false, nil
}

func (l *listener) cached(id int64) (jobRef, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ref, ok := l.jobs[id]
	return ref, ok
}

func (l *listener) remember(id int64, ref jobRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.jobs == nil {
		l.jobs = map[int64]jobRef{}
	}
	if len(l.jobs) > 10000 {
		clear(l.jobs) // a cache: resolving again costs one call
	}
	l.jobs[id] = ref
}

// delivery builds the stored delivery of one job message. Its id is the
// request's and the action's, so a message read twice is stored once.
func (l *listener) delivery(action string, requestID int64, ref jobRef, runner, conclusion string) (store.Delivery, error) {
	set := l.scaleSet()
	p := Payload{
		Action: action,
		WorkflowJob: PayloadJob{
			ID: ref.Job.ID, RunID: ref.Job.RunID, Name: ref.Job.Name, Labels: ref.Job.Labels,
			HTMLURL: ref.Job.HTMLURL, Status: action,
		},
		Repository: PayloadRepo{FullName: ref.Repo},
		ScaleSet:   &Request{Pool: l.pool.Name, SetID: set.Id, RequestID: requestID},
	}
	if runner != "" {
		p.WorkflowJob.RunnerName = &runner
	}
	if action == "completed" {
		p.WorkflowJob.Conclusion = &conclusion
	}
	b, err := json.Marshal(p)
	if err != nil {
		return store.Delivery{}, err
	}
	return store.Delivery{
		ID:    fmt.Sprintf("scaleset-%d-%d-%s", set.Id, requestID, action),
		Event: "workflow_job", ReceivedAt: l.o.Now(), Payload: b,
	}, nil
}

// adopt pairs the jobs a new session finds available with the queued
// jobs of buildfleet's runs that have neither a runner nor a delivery yet.
// An acquirable job names neither its run nor its job, only its workflow
// and labels, so it is paired only when that cannot go wrong: for each
// label set, as many requests of buildfleet's workflow (dispatched) as
// jobs of its runs waiting; requests and jobs are then paired in the
// order they were queued (a runner of the set takes whichever assigned
// job comes first, so the order decides no more than which attempt a job
// is counted on). Otherwise someone else's job could be among them and is
// not acquired: those wait for their messages.
// It reports whether some available jobs of buildfleet's workflow were
// left alone.
func (l *listener) adopt(ctx context.Context, avail []actions.AcquirableJob) (bool, error) {
	wf := l.workflow()
	reqs := map[string][]actions.AcquirableJob{}
	for _, a := range avail {
		if strings.EqualFold(a.OwnerName+"/"+a.RepositoryName, l.repo) && a.EventName == "workflow_dispatch" &&
			strings.HasPrefix(strings.ToLower(a.JobWorkflowRef), strings.ToLower(l.repo+"/.github/workflows/"+wf+"@")) {
			k := labelKey(a.RequestLabels)
			reqs[k] = append(reqs[k], a)
		}
	}
	if len(reqs) == 0 {
		return false, nil
	}
	waiting, inFlight, err := l.waiting(ctx)
	if err != nil {
		return false, err
	}
	// Worth another look only while one of buildfleet's jobs may be among
	// them: a dispatch not yet recorded, or jobs of its runs waiting.
	left := inFlight
	var ds []store.Delivery
	for k, rs := range reqs {
		js := waiting[k]
		if len(rs) != len(js) {
			l.log.Debug("available jobs not adopted: cannot tell which are buildfleet's", "labels", k,
				"available", len(rs), "waiting", len(js))
			left = left || len(js) > 0
			continue
		}
		sort.Slice(rs, func(a, b int) bool { return rs[a].RunnerRequestId < rs[b].RunnerRequestId })
		sort.Slice(js, func(a, b int) bool { return js[a].ID < js[b].ID })
		for i, a := range rs {
			ref := jobRef{Job: js[i], Repo: l.repo}
			l.remember(a.RunnerRequestId, ref)
			d, err := l.delivery("queued", a.RunnerRequestId, ref, "", "")
			if err != nil {
				return false, err
			}
			ds = append(ds, d)
		}
	}
	return left, l.store(ctx, ds)
}

// waiting are the queued jobs of buildfleet's open runs in the repository
// that have neither a runner nor a queued delivery, by label set; and
// whether a dispatch is in flight (its run not recorded yet).
func (l *listener) waiting(ctx context.Context) (map[string][]github.Job, bool, error) {
	open, err := l.o.Store.OpenRequests(ctx)
	if err != nil {
		return nil, false, err
	}
	out := map[string][]github.Job{}
	inFlight := false
	owner, name, _ := strings.Cut(l.repo, "/")
	for _, r := range open {
		if r.RunID == 0 && r.State != trigger.StateDispatched && r.DispatchTries > 0 {
			inFlight = true
		}
		if r.RunID == 0 || !strings.EqualFold(r.Repo, l.repo) {
			continue
		}
		jobs, err := l.o.GitHub.RunJobs(ctx, owner, name, r.RunID)
		if err != nil {
			return nil, false, err
		}
		for _, j := range jobs {
			if j.Status != "queued" {
				continue
			}
			if _, err := l.o.Store.LatestRunner(ctx, j.ID); !errors.Is(err, store.ErrNotFound) {
				continue // a runner was started for it (or the store failed: leave it)
			}
			if d, err := l.o.Store.GetKV(ctx, jobKey(j.ID)); err != nil || d != "" {
				continue // its delivery is stored
			}
			out[labelKey(j.Labels)] = append(out[labelKey(j.Labels)], j)
		}
	}
	return out, inFlight, nil
}

func (l *listener) workflow() string {
	for _, r := range l.o.Config.Repositories {
		if strings.EqualFold(r.Name, l.repo) {
			return r.Workflow
		}
	}
	return ""
}

// labelKey is a label set's canonical form (GitHub compares labels
// case-insensitively).
func labelKey(ls []string) string {
	low := make([]string, len(ls))
	for i, l := range ls {
		low[i] = strings.ToLower(l)
	}
	sort.Strings(low)
	return strings.Join(low, ",")
}
