package ghsim

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// Runner scale sets: the Actions service API that ARC's
// github.com/actions/actions-runner-controller/github/actions client speaks
// (v0.27.6 read for every path, body and status code below; its listener,
// cmd/githubrunnerscalesetlistener, for the order of calls). A scale set
// belongs to a repository here (the client's config URL names one), has
// labels and a runner group, and gets the repository's queued jobs whose
// runs-on labels it all has. A job's runner request moves:
//
//	available ──acquirejobs──▶ assigned ──a runner of the set takes it──▶ running ──▶ done
//	     └──────────────── cancelled or completed ─────────────────────────────────▶ done
//
// and each step is a message on the scale set's queue (JobAvailable,
// JobAssigned, JobStarted, JobCompleted), each message carrying the set's
// statistics. Only a runner whose JIT config was generated through the set
// takes the set's jobs, and it takes only jobs assigned to the set; other
// runners never take a job routed to a set.

// Runner request states.
const (
	ssAvailable = "available"
	ssAssigned  = "assigned"
	ssRunning   = "running"
	ssDone      = "done"
)

// scaleSetState is the scale-set side of the Actions service, guarded by
// Server.mu.
type scaleSetState struct {
	sets      map[int]*scaleSet
	groups    []*runnerGroup
	regTokens map[string]regToken
	admin     map[string]adminToken
	// reqs are the runner requests of jobs routed to a set, by job id.
	reqs map[int64]*ssRequest
	// byRunner is the set of each runner generated through one.
	byRunner map[int64]*scaleSet
	nextSet  int
	nextMsg  int64
	key      []byte // signs admin tokens
	// dupMessages is how many of the next messages are queued twice
	// (fault injection: GitHub's queue may deliver a message again).
	dupMessages int
	// pollWait overrides scaleSetPollWait when set.
	pollWait time.Duration
}

type runnerGroup struct {
	ID        int64
	Name      string
	IsDefault bool
}

type regToken struct {
	repo    *repo
	expires time.Time
}

type adminToken struct {
	repo    *repo
	expires time.Time
}

type scaleSet struct {
	ID        int
	Name      string
	Repo      *repo
	Group     *runnerGroup
	Labels    []string
	CreatedOn time.Time
	session   *ssSession
	// queue holds messages not yet deleted. It outlives a session: a
	// listener that crashed before deleting a message gets it again in its
	// next session (a guess; GitHub does not document it).
	queue []*ssMessage
}

type ssSession struct {
	ID           string
	Owner        string
	Token        string
	TokenExpires time.Time
}

type ssMessage struct {
	ID   int64
	Type string
	Body string
}

type ssRequest struct {
	ID    int64 // runnerRequestId
	Job   *job
	Set   *scaleSet
	State string
}

// scaleSetTokenTTL is how long a message queue token and an admin token
// live (guess: GitHub does not document it; ARC refreshes the admin token
// a minute before its exp claim and the queue token on a 401).
const scaleSetTokenTTL = time.Hour

// scaleSets returns the state, made on first use. Callers hold s.mu.
func (s *Server) scaleSets() *scaleSetState {
	if s.st.scaleSets == nil {
		s.st.scaleSets = &scaleSetState{
			sets: map[int]*scaleSet{}, regTokens: map[string]regToken{}, admin: map[string]adminToken{},
			reqs: map[int64]*ssRequest{}, byRunner: map[int64]*scaleSet{}, nextSet: 0,
			groups: []*runnerGroup{{ID: 1, Name: "Default", IsDefault: true}},
			key:    []byte(randomHex(32)),
		}
	}
	return s.st.scaleSets
}

// AddRunnerGroup adds a runner group scale sets may be created in and
// returns its id. GitHub has them per organization (and enterprise); ghsim
// has one list, with "Default" (id 1) always present.
func (s *Server) AddRunnerGroup(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	for _, g := range ss.groups {
		if strings.EqualFold(g.Name, name) {
			return g.ID
		}
	}
	g := &runnerGroup{ID: int64(len(ss.groups) + 1), Name: name}
	ss.groups = append(ss.groups, g)
	return g.ID
}

// ExpireScaleSetTokens expires every message queue token now (fault
// injection): the next GetMessage, DeleteMessage or AcquireJobs answers
// 401 and the client must refresh its session.
func (s *Server) ExpireScaleSetTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.scaleSets().sets {
		if set.session != nil {
			set.session.TokenExpires = s.opts.Now().Add(-time.Second)
		}
	}
}

// DuplicateScaleSetMessages queues each of the next n messages twice, under
// two message ids (fault injection).
func (s *Server) DuplicateScaleSetMessages(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scaleSets().dupMessages = n
}

// ScaleSetSession returns the id of the scale set's open message session,
// or "" when it has none.
func (s *Server) ScaleSetSession(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.scaleSets().sets[id]; set != nil && set.session != nil {
		return set.session.ID
	}
	return ""
}

// ScaleSetByName returns the id of the repository's scale set of that
// name, or 0.
func (s *Server) ScaleSetByName(repoFullName, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.scaleSets().sets {
		if strings.EqualFold(set.Repo.FullName(), repoFullName) && strings.EqualFold(set.Name, name) {
			return set.ID
		}
	}
	return 0
}

// scaleSetJobEvent routes a job to a scale set when it is queued and tells
// the set of its progress. It runs on every workflow_job event; callers
// hold s.mu.
func (s *Server) scaleSetJobEvent(j *job, action string) {
	if s.st.scaleSets == nil {
		return
	}
	ss := s.st.scaleSets
	switch action {
	case "queued":
		set := s.scaleSetFor(j)
		if set == nil {
			return
		}
		rq := &ssRequest{ID: s.st.id(), Job: j, Set: set, State: ssAvailable}
		ss.reqs[j.ID] = rq
		s.postJobMessage(set, "JobAvailable", rq, nil)
	case "in_progress":
		if rq := ss.reqs[j.ID]; rq != nil {
			rq.State = ssRunning
			s.postJobMessage(rq.Set, "JobStarted", rq, obj{"runnerId": j.RunnerID, "runnerName": j.RunnerName})
		}
	case "completed":
		if rq := ss.reqs[j.ID]; rq != nil {
			rq.State = ssDone
			s.postJobMessage(rq.Set, "JobCompleted", rq, obj{
				"result": taskResult(j.Conclusion), "runnerId": j.RunnerID, "runnerName": j.RunnerName})
			delete(ss.reqs, j.ID)
		}
	}
}

// taskResult is the Actions service's name for a conclusion (its
// TaskResult enum, lower-cased as the service serialises it: ARC's
// listener logs it as "succeeded", "failed", "canceled").
func taskResult(conclusion string) string {
	switch conclusion {
	case "success":
		return "succeeded"
	case "failure", "timed_out":
		return "failed"
	case "cancelled":
		return "canceled"
	case "skipped", "neutral":
		return "skipped"
	}
	return conclusion
}

// scaleSetFor is the first (oldest) scale set of the job's repository
// whose labels include all the job's runs-on labels.
func (s *Server) scaleSetFor(j *job) *scaleSet {
	var best *scaleSet
	for _, set := range s.st.scaleSets.sets {
		if set.Repo == j.Run.Repo && labelsMatch(j.Labels, set.Labels) && (best == nil || set.ID < best.ID) {
			best = set
		}
	}
	return best
}

// scaleSetAllows tells whether runner rn may take job j: a job routed to a
// scale set goes only to that set's runners once assigned, and a set's
// runner takes nothing else. Callers hold s.mu.
func (s *Server) scaleSetAllows(j *job, rn *runner) bool {
	if s.st.scaleSets == nil {
		return true
	}
	ss := s.st.scaleSets
	set, rq := ss.byRunner[rn.ID], ss.reqs[j.ID]
	switch {
	case rq == nil:
		return set == nil
	case set == nil:
		return false
	}
	return rq.Set == set && rq.State == ssAssigned
}

// jobMessage is a job message's body: ARC's JobMessageBase and the fields
// of each type (types.go).
func (s *Server) jobMessage(typ string, rq *ssRequest, extra obj) obj {
	j := rq.Job
	m := obj{
		"messageType": typ, "runnerRequestId": rq.ID, "repositoryName": j.Run.Repo.Name,
		"ownerName": j.Run.Repo.Owner.Login, "jobWorkflowRef": j.Run.Repo.FullName() + "/" + j.Run.WF.Path + "@refs/heads/" + j.Run.HeadBranch,
		"jobDisplayName": j.Name, "workflowRunId": j.Run.ID, "eventName": "workflow_dispatch",
		"requestLabels": j.Labels, "queueTime": ts(j.CreatedAt),
	}
	if typ == "JobAvailable" {
		m["acquireJobUrl"] = s.base + scaleSetRoot + "/_apis/runtime/runnerscalesets/" + itoa(rq.Set.ID) + "/acquirejobs"
	}
	if !j.StartedAt.IsZero() {
		m["runnerAssignTime"] = ts(j.StartedAt)
	}
	if !j.CompletedAt.IsZero() {
		m["finishTime"] = ts(j.CompletedAt)
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// postJobMessage queues one RunnerScaleSetJobMessages message with one job
// message, while the set has a session (a set without a listener has no
// queue; its listener reads the acquirable jobs when it opens one, as ARC
// does).
func (s *Server) postJobMessage(set *scaleSet, typ string, rq *ssRequest, extra obj) {
	if set.session == nil {
		return
	}
	body, _ := json.Marshal([]obj{s.jobMessage(typ, rq, extra)})
	ss := s.st.scaleSets
	n := 1
	if ss.dupMessages > 0 {
		ss.dupMessages--
		n = 2
	}
	for range n {
		ss.nextMsg++
		set.queue = append(set.queue, &ssMessage{ID: ss.nextMsg, Type: "RunnerScaleSetJobMessages", Body: string(body)})
	}
	s.cond.Broadcast()
}

// statistics are the set's counts as ARC's RunnerScaleSetStatistic has them.
func (s *Server) statistics(set *scaleSet) obj {
	st := map[string]int{}
	for _, rq := range s.st.scaleSets.reqs {
		if rq.Set != set {
			continue
		}
		switch rq.State {
		case ssAvailable:
			st["available"]++
		case ssAssigned:
			st["acquired"]++
			st["assigned"]++
		case ssRunning:
			st["running"]++
		}
	}
	for id, rs := range s.st.scaleSets.byRunner {
		rn := s.st.runner[id]
		if rs != set || rn == nil {
			continue
		}
		st["registered"]++
		if rn.Busy {
			st["busy"]++
		} else if rn.Status == "online" {
			st["idle"]++
		}
	}
	return obj{
		"totalAvailableJobs": st["available"], "totalAcquiredJobs": st["acquired"], "totalAssignedJobs": st["assigned"],
		"totalRunningJobs": st["running"], "totalRegisteredRunners": st["registered"], "totalBusyRunners": st["busy"],
		"totalIdleRunners": st["idle"],
	}
}

func (s *Server) scaleSetJSON(set *scaleSet) obj {
	labels := []obj{}
	for _, l := range set.Labels {
		labels = append(labels, obj{"type": "System", "name": l})
	}
	return obj{
		"id": set.ID, "name": set.Name, "runnerGroupId": set.Group.ID, "runnerGroupName": set.Group.Name,
		"labels": labels, "RunnerSetting": obj{"ephemeral": true, "isElastic": true},
		"createdOn":          set.CreatedOn.UTC().Format(time.RFC3339),
		"runnerJitConfigUrl": s.base + scaleSetRoot + "/_apis/runtime/runnerscalesets/" + itoa(set.ID) + "/generatejitconfig",
		"statistics":         s.statistics(set),
	}
}

func (s *Server) sessionJSON(set *scaleSet) obj {
	se := set.session
	return obj{
		"sessionId": se.ID, "ownerName": se.Owner, "runnerScaleSet": s.scaleSetJSON(set),
		"messageQueueUrl":         s.base + scaleSetRoot + "/_queue/" + itoa(set.ID) + "/" + se.ID + "/messages",
		"messageQueueAccessToken": se.Token, "statistics": s.statistics(set),
	}
}

// acquirable lists the set's available requests, oldest first.
func (s *Server) acquirable(set *scaleSet) []*ssRequest {
	var out []*ssRequest
	for _, rq := range s.st.scaleSets.reqs {
		if rq.Set == set && rq.State == ssAvailable {
			out = append(out, rq)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// OpenScaleSetSession opens a message session on the set as a listener
// would (tests use it for a listener that then died) and returns its id;
// a set that has one already is an error, as the API's 409.
func (s *Server) OpenScaleSetSession(id int, owner string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.scaleSets().sets[id]
	switch {
	case set == nil:
		return "", errf("scale set %d not found", id)
	case set.session != nil:
		return "", errf("scale set %d already has session %s", id, set.session.ID)
	}
	set.session = &ssSession{ID: guid(), Owner: owner, Token: randomHex(20), TokenExpires: s.opts.Now().Add(scaleSetTokenTTL)}
	return set.session.ID, nil
}

// ScaleSetStatistics returns the set's statistics as its messages carry
// them (totalAvailableJobs, totalAssignedJobs, …), or nil for no such set.
func (s *Server) ScaleSetStatistics(id int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.scaleSets().sets[id]
	if set == nil {
		return nil
	}
	out := map[string]int{}
	for k, v := range s.statistics(set) {
		out[k], _ = v.(int)
	}
	return out
}
