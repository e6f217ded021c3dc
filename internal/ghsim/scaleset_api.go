package ghsim

import (
	"crypto/hmac"
	"crypto/sha256"
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
	s.scaleSetControlRoutes()
}

// writeActionsError writes the Actions service's error shape, which ARC's
// ParseActionsErrorFromResponse reads: {typeName, message}.
func writeActionsError(w http.ResponseWriter, code int, typeName, msg string) {
	writeJSON(w, code, obj{"typeName": typeName, "message": msg, "$id": "1", "errorCode": 0, "eventId": 3000})
}

// svcFaults applies the Actions service's fault rules (Fault.Service:
// 5xx, latency, token_expiry) to a scale-set endpoint, matched by method
// and path as the runners' service calls are. token_expiry expires the
// call's message queue token (the listener must refresh its session) or,
// on an admin call, its admin token (ARC registers again only when the
// token's exp claim says so, so that call fails).
func (s *Server) svcFaults(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := s.faults.matchService(r.Method, r.URL.Path)
		if f != nil {
			switch f.Kind {
			case FaultLatency:
				select {
				case <-time.After(f.delay):
				case <-r.Context().Done():
					return
				}
			case FaultServerError:
				writeActionsError(w, f.Status, "ServiceUnavailableException", http.StatusText(f.Status))
				return
			case FaultTokenExpiry:
				s.expireToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			}
		}
		h(w, r)
	}
}

// expireToken ends a message queue or admin token now.
func (s *Server) expireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	for _, set := range ss.sets {
		if set.session != nil && set.session.Token == tok {
			set.session.TokenExpires = s.opts.Now().Add(-time.Second)
		}
	}
	if at, ok := ss.admin[tok]; ok {
		at.expires = s.opts.Now().Add(-time.Second)
		ss.admin[tok] = at
	}
}

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
	if len(b.Labels) > 1 {
		// "runner scale sets can ... only have one label assigned to
		// them" (docs.github.com, About runner scale sets); the status
		// code is a guess.
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "a runner scale set has one label")
		return
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
	// Jobs already queued for its label wait for it (guess: GitHub routes
	// a job queued before the set existed once the set does).
	for _, j := range s.st.jobs {
		if j.Status == "queued" && j.Run.Repo == rp && ss.reqs[j.ID] == nil && labelsMatch(j.Labels, set.Labels) {
			ss.reqs[j.ID] = &ssRequest{ID: s.st.id(), Job: j, Set: set, State: ssAvailable}
		}
	}
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
