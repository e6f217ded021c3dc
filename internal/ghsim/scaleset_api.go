package ghsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// scaleSetRoot is where ghsim serves the Actions service for scale sets;
// POST /actions/runner-registration hands out this URL (without a
// trailing slash: ARC's AcquireJobs appends "/_apis/..." to it verbatim).
const scaleSetRoot = "/_services/scalesets"

// scaleSetPollWait is how long GetMessage waits for a message before it
// answers 202 (guess: GitHub's broker holds about 50 s).
var scaleSetPollWait = 50 * time.Second

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) scaleSetRoutes() {
	m := s.mux
	const rs = scaleSetRoot + "/_apis/runtime/runnerscalesets"
	m.HandleFunc("POST /repos/{owner}/{repo}/actions/runners/registration-token", s.handleRegistrationToken)
	m.HandleFunc("POST /actions/runner-registration", s.svcFaults(s.handleRunnerRegistration))
	m.HandleFunc("GET "+rs, s.svcAdmin(s.handleGetScaleSetByName))
	m.HandleFunc("POST "+rs, s.svcAdmin(s.handleCreateScaleSet))
	m.HandleFunc("GET "+rs+"/{id}", s.svcAdmin(s.withSet(s.handleGetScaleSet)))
	m.HandleFunc("PATCH "+rs+"/{id}", s.svcAdmin(s.withSet(s.handleUpdateScaleSet)))
	m.HandleFunc("DELETE "+rs+"/{id}", s.svcAdmin(s.withSet(s.handleDeleteScaleSet)))
	m.HandleFunc("POST "+rs+"/{id}/sessions", s.svcAdmin(s.withSet(s.handleCreateSession)))
	m.HandleFunc("PATCH "+rs+"/{id}/sessions/{sid}", s.svcAdmin(s.withSet(s.handleRefreshSession)))
	m.HandleFunc("DELETE "+rs+"/{id}/sessions/{sid}", s.svcAdmin(s.withSet(s.handleDeleteSession)))
	m.HandleFunc("GET "+rs+"/{id}/acquirablejobs", s.svcAdmin(s.withSet(s.handleAcquirableJobs)))
	m.HandleFunc("POST "+rs+"/{id}/generatejitconfig", s.svcAdmin(s.withSet(s.handleScaleSetJIT)))
	m.HandleFunc("POST "+rs+"/{id}/acquirejobs", s.svcFaults(s.handleAcquireJobs))
	m.HandleFunc("GET "+scaleSetRoot+"/_apis/runtime/runnergroups/", s.svcAdmin(s.handleRunnerGroups))
	m.HandleFunc("GET "+scaleSetRoot+"/_apis/runtime/runnergroups", s.svcAdmin(s.handleRunnerGroups))
	m.HandleFunc("GET "+scaleSetRoot+"/_apis/distributedtask/pools/0/agents", s.svcAdmin(s.handleAgentByName))
	m.HandleFunc("GET "+scaleSetRoot+"/_apis/distributedtask/pools/0/agents/{rid}", s.svcAdmin(s.handleGetAgent))
	m.HandleFunc("DELETE "+scaleSetRoot+"/_apis/distributedtask/pools/0/agents/{rid}", s.svcAdmin(s.handleDeleteAgent))
	m.HandleFunc("GET "+scaleSetRoot+"/_queue/{id}/{sid}/messages", s.svcFaults(s.handleGetMessage))
	m.HandleFunc("DELETE "+scaleSetRoot+"/_queue/{id}/{sid}/messages/{mid}", s.svcFaults(s.handleDeleteMessage))
}

// writeActionsError writes the Actions service's error shape, which ARC's
// ParseActionsErrorFromResponse reads: {typeName, message}.
func writeActionsError(w http.ResponseWriter, code int, typeName, msg string) {
	writeJSON(w, code, obj{"typeName": typeName, "message": msg, "$id": "1", "errorCode": 0, "eventId": 3000})
}

// svcFaults applies the REST side's fault rules (5xx, latency, 429) to an
// Actions service endpoint, matched by method and path like REST calls.
func (s *Server) svcFaults(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := s.faults.match(r.Method, r.URL.Path)
		if f != nil {
			switch f.Kind {
			case FaultLatency, FaultSlowAnswer:
				select {
				case <-time.After(f.delay):
				case <-r.Context().Done():
					return
				}
			case FaultServerError:
				writeActionsError(w, f.Status, "ServiceUnavailableException", http.StatusText(f.Status))
				return
			default:
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
				writeActionsError(w, http.StatusTooManyRequests, "TooManyRequestsException", "too many requests")
				return
			}
		}
		h(w, r)
	}
}

type adminKey struct{}

// svcAdmin authenticates an admin call (the JWT from
// runner-registration) and applies faults.
func (s *Server) svcAdmin(h func(http.ResponseWriter, *http.Request, *repo)) http.HandlerFunc {
	return s.svcFaults(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		at, ok := s.scaleSets().admin[tok]
		s.mu.Unlock()
		if !ok || tok == "" || s.opts.Now().After(at.expires) {
			writeActionsError(w, http.StatusUnauthorized, "VssUnauthorizedException", "TF400813: The user is not authorized to access this resource.")
			return
		}
		h(w, r, at.repo)
	})
}

// withSet resolves {id} to one of the repository's scale sets (404
// otherwise) and runs h with s.mu held.
func (s *Server) withSet(h func(http.ResponseWriter, *http.Request, *scaleSet)) func(http.ResponseWriter, *http.Request, *repo) {
	return func(w http.ResponseWriter, r *http.Request, rp *repo) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		s.mu.Lock()
		defer s.mu.Unlock()
		set := s.scaleSets().sets[id]
		if set == nil || set.Repo != rp {
			writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set "+r.PathValue("id")+" not found")
			return
		}
		h(w, r, set)
	}
}

// handleRegistrationToken is POST /repos/{o}/{r}/actions/runners/registration-token:
// 201 {token, expires_at}, an hour's validity (docs.github.com/rest/actions/self-hosted-runners).
func (s *Server) handleRegistrationToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	tok := strings.ToUpper(randomHex(15))[:29]
	exp := s.now().Add(time.Hour)
	s.scaleSets().regTokens[tok] = regToken{repo: rp, expires: exp}
	writeJSON(w, http.StatusCreated, obj{"token": tok, "expires_at": exp.Format(time.RFC3339)})
}

// handleRunnerRegistration is POST /actions/runner-registration with
// "Authorization: RemoteAuth <registration token>" and {url, runner_event}:
// the Actions service URL and a JWT for it (ARC client.go
// getActionsServiceAdminConnection; actions/runner's GitHubAuthResult has
// the same {url, token, token_schema}).
func (s *Server) handleRunnerRegistration(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "RemoteAuth ")
	var b struct {
		URL         string `json:"url"`
		RunnerEvent string `json:"runner_event"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	rt, ok := ss.regTokens[tok]
	if !ok || tok == "" || s.opts.Now().After(rt.expires) {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	u, err := url.Parse(b.URL)
	if err != nil || !strings.EqualFold(strings.Trim(u.Path, "/"), rt.repo.FullName()) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	exp := s.opts.Now().Add(scaleSetTokenTTL)
	jwt := s.adminJWT(exp)
	ss.admin[jwt] = adminToken{repo: rt.repo, expires: exp}
	writeJSON(w, http.StatusOK, obj{"url": s.base + scaleSetRoot, "token": jwt, "token_schema": "OAuthAccessToken"})
}

// adminJWT makes an HS256 JWT with an exp claim: ARC reads exp (unverified)
// to know when to register again.
func (s *Server) adminJWT(exp time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(obj{"exp": exp.Unix(), "iat": s.opts.Now().Unix(), "jti": guid()})
	msg := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.scaleSets().key)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

func (s *Server) handleRunnerGroups(w http.ResponseWriter, r *http.Request, _ *repo) {
	name := r.URL.Query().Get("groupName")
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []obj{}
	for _, g := range s.scaleSets().groups {
		if name == "" || strings.EqualFold(g.Name, name) {
			list = append(list, obj{"id": g.ID, "name": g.Name, "size": 0, "isDefaultGroup": g.IsDefault})
		}
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

func (s *Server) handleGetScaleSetByName(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	gid, _ := strconv.ParseInt(q.Get("runnerGroupId"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []obj{}
	for _, set := range s.scaleSets().sets {
		if set.Repo == rp && strings.EqualFold(set.Name, q.Get("name")) && (gid == 0 || set.Group.ID == gid) {
			list = append(list, s.scaleSetJSON(set))
		}
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

type scaleSetBody struct {
	Name          string `json:"name"`
	RunnerGroupID int64  `json:"runnerGroupId"`
	Labels        []struct {
		Name string `json:"name"`
	} `json:"labels"`
}

// group finds a runner group by id; 0 is the default group.
func (ss *scaleSetState) group(id int64) *runnerGroup {
	for _, g := range ss.groups {
		if g.ID == id || (id == 0 && g.IsDefault) {
			return g
		}
	}
	return nil
}

func (s *Server) handleCreateScaleSet(w http.ResponseWriter, r *http.Request, rp *repo) {
	var b scaleSetBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "bad JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	g := ss.group(b.RunnerGroupID)
	switch {
	case strings.TrimSpace(b.Name) == "":
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "name is required")
		return
	case g == nil:
		writeActionsError(w, http.StatusBadRequest, "RunnerGroupNotFoundException", "runner group "+strconv.FormatInt(b.RunnerGroupID, 10)+" not found")
		return
	}
	for _, set := range ss.sets {
		if set.Repo == rp && strings.EqualFold(set.Name, b.Name) {
			// Guess: GitHub's answer to a duplicate name is not documented.
			writeActionsError(w, http.StatusConflict, "RunnerScaleSetExistsException", "a runner scale set named "+b.Name+" already exists")
			return
		}
	}
	ss.nextSet++
	set := &scaleSet{ID: ss.nextSet, Name: b.Name, Repo: rp, Group: g, CreatedOn: s.now()}
	for _, l := range b.Labels {
		set.Labels = append(set.Labels, l.Name)
	}
	if len(set.Labels) == 0 {
		set.Labels = []string{b.Name} // ARC labels a set with its name
	}
	ss.sets[set.ID] = set
	writeJSON(w, http.StatusOK, s.scaleSetJSON(set))
}

func (s *Server) handleGetScaleSet(w http.ResponseWriter, _ *http.Request, set *scaleSet) {
	writeJSON(w, http.StatusOK, s.scaleSetJSON(set))
}

func (s *Server) handleUpdateScaleSet(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	var b scaleSetBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "bad JSON: "+err.Error())
		return
	}
	if b.RunnerGroupID != 0 {
		g := s.scaleSets().group(b.RunnerGroupID)
		if g == nil {
			writeActionsError(w, http.StatusBadRequest, "RunnerGroupNotFoundException", "runner group not found")
			return
		}
		set.Group = g
	}
	if b.Name != "" {
		set.Name = b.Name
	}
	if len(b.Labels) > 0 {
		set.Labels = nil
		for _, l := range b.Labels {
			set.Labels = append(set.Labels, l.Name)
		}
	}
	writeJSON(w, http.StatusOK, s.scaleSetJSON(set))
}

func (s *Server) handleDeleteScaleSet(w http.ResponseWriter, _ *http.Request, set *scaleSet) {
	ss := s.scaleSets()
	delete(ss.sets, set.ID)
	for id, rq := range ss.reqs {
		if rq.Set == set {
			delete(ss.reqs, id)
		}
	}
	s.cond.Broadcast()
	w.WriteHeader(http.StatusNoContent)
}

// writeSessionExpired answers a call about a session that is not (or no
// longer) the set's: 400 RunnerScaleSetSessionExpiredException, as
// GitHub answers a listener deleting a session it lost
// (actions/actions-runner-controller#4285 shows the exception and text).
func writeSessionExpired(w http.ResponseWriter, sid string) {
	writeActionsError(w, http.StatusBadRequest,
		"GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionExpiredException, GitHub.Actions.Runtime.WebApi",
		"The session identifier "+sid+" is not valid.")
}

// handleCreateSession opens the set's one message session; while one is
// open, another is refused with 409 RunnerScaleSetSessionConflictException
// (the exception named in actions/actions-runner-controller#4285; ARC's
// listener retries on 409, the old session may belong to a listener that
// died). DELETE of a session answers 204; ARC v0.27.6's
// DeleteMessageSession takes any answer without a body for an error
// (doSessionRequest), newer versions expect 204.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	var b struct {
		OwnerName string `json:"ownerName"`
	}
	_ = json.NewDecoder(r.Body).Decode(&b)
	if set.session != nil {
		writeActionsError(w, http.StatusConflict, "GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionConflictException, GitHub.Actions.Runtime.WebApi",
			"The scale set "+set.Name+" already has an active session for owner "+set.session.Owner+".")
		return
	}
	set.session = &ssSession{ID: guid(), Owner: b.OwnerName, Token: randomHex(20), TokenExpires: s.opts.Now().Add(scaleSetTokenTTL)}
	writeJSON(w, http.StatusOK, s.sessionJSON(set))
}

func (s *Server) handleRefreshSession(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	if set.session == nil || !strings.EqualFold(set.session.ID, r.PathValue("sid")) {
		writeSessionExpired(w, r.PathValue("sid"))
		return
	}
	set.session.Token, set.session.TokenExpires = randomHex(20), s.opts.Now().Add(scaleSetTokenTTL)
	writeJSON(w, http.StatusOK, s.sessionJSON(set))
}

func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	if set.session == nil || !strings.EqualFold(set.session.ID, r.PathValue("sid")) {
		writeSessionExpired(w, r.PathValue("sid"))
		return
	}
	set.session = nil
	s.cond.Broadcast()
	w.WriteHeader(http.StatusNoContent)
}

// acquirableJSON is ARC's AcquirableJob.
func (s *Server) acquirableJSON(rq *ssRequest) obj {
	m := s.jobMessage("JobAvailable", rq, nil)
	out := obj{}
	for _, k := range []string{"acquireJobUrl", "messageType", "runnerRequestId", "repositoryName", "ownerName", "jobWorkflowRef", "eventName", "requestLabels"} {
		out[k] = m[k]
	}
	return out
}

// handleAcquirableJobs lists the set's available jobs; 204 when there are
// none (ARC's GetAcquirableJobs takes 204 as an empty list).
func (s *Server) handleAcquirableJobs(w http.ResponseWriter, _ *http.Request, set *scaleSet) {
	list := []obj{}
	for _, rq := range s.acquirable(set) {
		list = append(list, s.acquirableJSON(rq))
	}
	if len(list) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

// queueSession authenticates a message queue call ("Bearer <message queue
// access token>"); an expired or unknown token is 401 with a text body,
// which ARC turns into MessageQueueTokenExpiredError. Callers hold s.mu.
func (s *Server) queueSession(w http.ResponseWriter, r *http.Request, set *scaleSet) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	se := set.session
	if se == nil || (r.PathValue("sid") != "" && !strings.EqualFold(se.ID, r.PathValue("sid"))) ||
		subtle.ConstantTimeCompare([]byte(se.Token), []byte(tok)) != 1 || s.opts.Now().After(se.TokenExpires) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("message queue token expired or invalid"))
		return false
	}
	return true
}

// handleAcquireJobs takes the listed available requests for the set and
// assigns them to it: 200 {count, value: [acquired ids]}. Requests already
// assigned to the set count as acquired; others (gone, done, another
// set's) are left out.
func (s *Server) handleAcquireJobs(w http.ResponseWriter, r *http.Request) {
	var ids []int64
	if !decodeBody(w, r, &ids) {
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	set := ss.sets[id]
	if set == nil {
		writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
		return
	}
	if !s.queueSession(w, r, set) {
		return
	}
	got := []int64{}
	for _, want := range ids {
		for _, rq := range ss.reqs {
			if rq.ID != want || rq.Set != set {
				continue
			}
			if rq.State == ssAvailable {
				rq.State = ssAssigned
				s.postJobMessage(set, "JobAssigned", rq, nil)
			}
			if rq.State == ssAssigned {
				got = append(got, rq.ID)
			}
		}
	}
	s.cond.Broadcast()
	writeJSON(w, http.StatusOK, obj{"count": len(got), "value": got})
}

// handleGetMessage long-polls for the oldest message after lastMessageId:
// 200 with it, or 202 when none came in time (ARC: 202 is "no message").
func (s *Server) handleGetMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	last, _ := strconv.ParseInt(r.URL.Query().Get("lastMessageId"), 10, 64)
	s.mu.Lock()
	wait := scaleSetPollWait
	if d := s.scaleSets().pollWait; d > 0 {
		wait = d
	}
	s.mu.Unlock()
	done := make(chan struct{})
	defer close(done)
	timer := time.AfterFunc(wait, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(wait)
	go func() {
		select {
		case <-r.Context().Done():
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		case <-done:
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		set := s.scaleSets().sets[id]
		if set == nil {
			writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
			return
		}
		if !s.queueSession(w, r, set) {
			return
		}
		for _, m := range set.queue {
			if m.ID > last {
				writeJSON(w, http.StatusOK, obj{"messageId": m.ID, "messageType": m.Type, "body": m.Body, "statistics": s.statistics(set)})
				return
			}
		}
		select {
		case <-s.closed:
			w.WriteHeader(http.StatusAccepted)
			return
		default:
		}
		if r.Context().Err() != nil || !time.Now().Before(deadline) {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		s.cond.Wait()
	}
}

func (s *Server) handleDeleteMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	mid, _ := strconv.ParseInt(r.PathValue("mid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.scaleSets().sets[id]
	if set == nil {
		writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
		return
	}
	if !s.queueSession(w, r, set) {
		return
	}
	for i, m := range set.queue {
		if m.ID == mid {
			set.queue = append(set.queue[:i:i], set.queue[i+1:]...)
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleScaleSetJIT registers an ephemeral runner in the set and returns
// its JIT config: 200 {runner: {id, name, runnerScaleSetId},
// encodedJITConfig}. The runner carries the set's labels and takes only
// jobs assigned to the set.
func (s *Server) handleScaleSetJIT(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	var b struct {
		Name       string `json:"name"`
		WorkFolder string `json:"workFolder"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || strings.TrimSpace(b.Name) == "" {
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "name is required")
		return
	}
	rp := set.Repo
	if _, dup := rp.Runners[strings.ToLower(b.Name)]; dup {
		// Guess: the service's name for it, as actions/runner reports a
		// duplicate agent; the status code is not documented.
		writeActionsError(w, http.StatusConflict, "AgentExistsException", "A runner with the name "+b.Name+" already exists.")
		return
	}
	if b.WorkFolder == "" {
		b.WorkFolder = "_work"
	}
	rn := &runner{
		ID: s.st.id(), Repo: rp, Name: b.Name, Labels: append([]string(nil), set.Labels...), GroupID: set.Group.ID,
		WorkFolder: b.WorkFolder, Status: "offline",
	}
	key, err := newRunnerKey()
	if err != nil {
		writeActionsError(w, http.StatusInternalServerError, "VssServiceException", err.Error())
		return
	}
	cfg, err := s.encodeJIT(rn, key)
	if err != nil {
		writeActionsError(w, http.StatusInternalServerError, "VssServiceException", err.Error())
		return
	}
	rp.Runners[strings.ToLower(rn.Name)] = rn
	s.st.runner[rn.ID] = rn
	s.scaleSets().byRunner[rn.ID] = set
	writeJSON(w, http.StatusOK, obj{
		"runner":           obj{"id": rn.ID, "name": rn.Name, "runnerScaleSetId": set.ID},
		"encodedJITConfig": cfg,
	})
}

// agentOf finds a runner of the admin token's repository.
func (s *Server) agentOf(rp *repo, id int64) *runner {
	if rn := s.st.runner[id]; rn != nil && rn.Repo == rp {
		return rn
	}
	return nil
}

func (s *Server) agentJSON(rn *runner) obj {
	setID := 0
	if set := s.scaleSets().byRunner[rn.ID]; set != nil {
		setID = set.ID
	}
	return obj{"id": rn.ID, "name": rn.Name, "runnerScaleSetId": setID}
}

func (s *Server) handleGetAgent(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, _ := strconv.ParseInt(r.PathValue("rid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.agentOf(rp, id)
	if rn == nil {
		writeActionsError(w, http.StatusNotFound, "AgentNotFoundException", "runner not found")
		return
	}
	writeJSON(w, http.StatusOK, s.agentJSON(rn))
}

func (s *Server) handleAgentByName(w http.ResponseWriter, r *http.Request, rp *repo) {
	name := r.URL.Query().Get("agentName")
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []obj{}
	if rn := rp.Runners[strings.ToLower(name)]; rn != nil {
		list = append(list, s.agentJSON(rn))
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

func (s *Server) handleDeleteAgent(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, _ := strconv.ParseInt(r.PathValue("rid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.agentOf(rp, id)
	if rn == nil {
		writeActionsError(w, http.StatusNotFound, "AgentNotFoundException", "runner not found")
		return
	}
	if rn.Busy {
		// As the REST endpoint: a busy runner cannot be removed.
		writeActionsError(w, http.StatusBadRequest, "AgentBusyException", "the runner is running a job")
		return
	}
	s.deleteRunner(rn)
	delete(s.scaleSets().byRunner, rn.ID)
	w.WriteHeader(http.StatusNoContent)
}

// SetScaleSetPollWait sets how long GetMessage holds a poll before 202
// (tests shorten it).
func (s *Server) SetScaleSetPollWait(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scaleSets().pollWait = d
}
