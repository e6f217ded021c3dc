package ghsim

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// A runner listens for work through a message session (github-act-runner
// protocol/session.go, actions/runner MessageListener.cs):
//
//	POST   pools/{pool}/sessions              -> session id and an AES key,
//	                                             RSA-OAEP encrypted to the runner
//	GET    pools/{pool}/messages?sessionId=   long poll: 200 a message, or
//	                                             202 with no body when none came
//	DELETE pools/{pool}/messages/{id}         acknowledge a message
//	DELETE pools/{pool}/sessions/{id}         end the session
//	PATCH  pools/{pool}/jobrequests/{id}      renew the lock on a job
//
// Messages are AES-CBC encrypted with the session key, IV per message. A
// job is assigned when a listening, idle runner polls and a queued job's
// labels are all among the runner's; its first message is the job itself
// (PipelineAgentJobRequest), a cancelled run adds a JobCancellation.

// messagePoll bounds one long poll (guess: GitHub holds about 50 s; the
// runner's HTTP client gives up at 100 s).
const messagePoll = 50 * time.Second

// svcSession is one runner's message session.
type svcSession struct {
	id       string
	runnerID int64
	key      []byte // AES-256
	pending  []svcMessage
}

type svcMessage struct {
	ID   int64  `json:"messageId"`
	Type string `json:"messageType"`
	IV   string `json:"iv"`
	Body string `json:"body"`
}

// taskAgentSession is the session as the runner sends and reads it.
type taskAgentSession struct {
	SessionID     string `json:"sessionId"`
	OwnerName     string `json:"ownerName"`
	EncryptionKey struct {
		Encrypted bool   `json:"encrypted"`
		Value     string `json:"value"`
	} `json:"encryptionKey"`
	Agent             json.RawMessage `json:"agent"`
	UseFipsEncryption bool            `json:"useFipsEncryption"`
}

func (s *Server) handleRunnerCreateSession(w http.ResponseWriter, r *http.Request) {
	var b taskAgentSession
	if !decodeBody(w, r, &b) {
		return
	}
	var agent struct {
		ID      int64  `json:"id"`
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b.Agent, &agent)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.svcAuth(w, r)
	if !ok {
		return
	}
	rn := s.st.runner[t.runnerID]
	switch {
	case t.jobID != 0 || agent.ID != t.runnerID:
		writeSvcError(w, http.StatusForbidden, "AccessDeniedException", "The token is not the runner's own.")
		return
	case rn == nil:
		writeSvcError(w, http.StatusNotFound, "TaskAgentNotFoundException", "No runner with id "+strconv.FormatInt(t.runnerID, 10)+" exists.")
		return
	case rn.session != "":
		writeSvcError(w, http.StatusConflict, "TaskAgentSessionConflictException", "The runner "+rn.Name+" already has a session.")
		return
	case olderVersion(agent.Version, s.st.pkgs.minVersion):
		// As for the stand-in (runnerproto.go): GitHub's deprecation message.
		writeSvcError(w, http.StatusForbidden, "AccessDeniedException", deprecatedMessage(agent.Version))
		return
	}
	sess := &svcSession{id: guid(), runnerID: rn.ID, key: make([]byte, 32)}
	_, _ = rand.Read(sess.key)
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, s.svc().creds[rn.ID].pub, sess.key, nil)
	if err != nil {
		writeSvcError(w, http.StatusInternalServerError, "VssServiceException", "encrypting the session key failed")
		return
	}
	s.svc().sessions[sess.id] = sess
	rn.session, rn.Status = sess.id, "online"
	s.seen(rn)
	b.SessionID = sess.id
	b.EncryptionKey.Encrypted, b.EncryptionKey.Value = true, base64.StdEncoding.EncodeToString(enc)
	b.UseFipsEncryption = false
	writeJSON(w, http.StatusOK, b)
}

// session authenticates a call on session id with the runner's token.
// Callers hold s.mu.
func (s *Server) session(w http.ResponseWriter, r *http.Request, id string) (*svcSession, *runner, bool) {
	t, ok := s.svcAuth(w, r)
	if !ok {
		return nil, nil, false
	}
	sess := s.svc().sessions[id]
	if sess == nil || sess.runnerID != t.runnerID || t.jobID != 0 {
		writeSvcError(w, http.StatusNotFound, "TaskAgentSessionExpiredException", "The session "+id+" has expired or does not exist.")
		return nil, nil, false
	}
	rn := s.st.runner[sess.runnerID]
	if rn == nil {
		writeSvcError(w, http.StatusNotFound, "TaskAgentNotFoundException", "The runner was removed.")
		return nil, nil, false
	}
	return sess, rn, true
}

func (s *Server) handleRunnerDeleteSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, rn, ok := s.session(w, r, r.PathValue("session"))
	if !ok {
		return
	}
	delete(s.svc().sessions, sess.id)
	if rn.session == sess.id {
		rn.session = ""
		if !rn.Busy {
			rn.Status = "offline"
		}
	}
	w.WriteHeader(http.StatusOK)
}

// handleRunnerGetMessage long-polls for the session's next message, assigning
// a queued job to an idle runner.
func (s *Server) handleRunnerGetMessage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), messagePoll)
	defer cancel()
	defer s.wakeWhenDone(ctx)()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.svc().sessions[r.URL.Query().Get("sessionId")]; sess != nil {
		if rn := s.st.runner[sess.runnerID]; rn != nil {
			defer s.polling(rn)()
		}
	}
	for {
		sess, rn, ok := s.session(w, r, r.URL.Query().Get("sessionId"))
		if !ok {
			return
		}
		if len(sess.pending) == 0 {
			s.fillSession(sess, rn)
		}
		if len(sess.pending) > 0 {
			writeJSON(w, http.StatusOK, sess.pending[0])
			return
		}
		select {
		case <-s.closed:
			w.WriteHeader(http.StatusAccepted)
			return
		default:
		}
		if ctx.Err() != nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		s.cond.Wait()
	}
}

// fillSession queues what the runner should hear next: a job for an idle
// runner, a cancellation for a busy one whose run was cancelled.
func (s *Server) fillSession(sess *svcSession, rn *runner) {
	if !rn.Busy {
		j := s.pickJob(rn)
		if j == nil {
			return
		}
		s.startJob(j, rn)
		req := s.newJobRequest(j, rn)
		s.pushMessage(sess, "PipelineAgentJobRequest", s.runnerJobMessage(req))
		return
	}
	for _, req := range s.svc().requests {
		if req.runnerID == rn.ID && !req.finished && req.job.CancelRequested && !req.cancelSent {
			req.cancelSent = true
			s.pushMessage(sess, "JobCancellation", obj{"jobId": req.jobGUID, "timeout": "00:05:00"})
		}
	}
}

// pushMessage encrypts body with the session key and queues it.
func (s *Server) pushMessage(sess *svcSession, typ string, body any) {
	plain, _ := json.Marshal(body)
	block, _ := aes.NewCipher(sess.key)
	iv := make([]byte, aes.BlockSize)
	_, _ = rand.Read(iv)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	for range pad {
		plain = append(plain, byte(pad))
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(plain, plain)
	s.svc().nextMsg++
	sess.pending = append(sess.pending, svcMessage{
		ID: s.svc().nextMsg, Type: typ,
		IV: base64.StdEncoding.EncodeToString(iv), Body: base64.StdEncoding.EncodeToString(plain),
	})
}

func (s *Server) handleRunnerDeleteMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, _, ok := s.session(w, r, r.URL.Query().Get("sessionId"))
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("message"), 10, 64)
	for i, m := range sess.pending {
		if m.ID == id {
			sess.pending = append(sess.pending[:i:i], sess.pending[i+1:]...)
			break
		}
	}
	w.WriteHeader(http.StatusOK)
}

// handleRenewJob extends the lock a runner holds on its job request.
func (s *Server) handleRenewJob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.svcAuth(w, r)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("request"), 10, 64)
	req := s.svc().requests[id]
	if req == nil || req.runnerID != t.runnerID {
		writeSvcError(w, http.StatusNotFound, "TaskAgentJobNotFoundException", "No job request "+r.PathValue("request")+" for this runner.")
		return
	}
	if req.finished {
		writeSvcError(w, http.StatusConflict, "TaskAgentJobTokenExpiredException", "The job request "+r.PathValue("request")+" is finished.")
		return
	}
	req.lockedUntil = s.now().Add(10 * time.Minute)
	req.renewals++
	writeJSON(w, http.StatusOK, s.jobRequestJSON(req))
}

// handleRunnerDeleteAgent removes the runner, as `config.sh remove` does.
func (s *Server) handleRunnerDeleteAgent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.svcAuth(w, r)
	if !ok {
		return
	}
	rn := s.st.runner[t.runnerID]
	if rn == nil || r.PathValue("agent") != strconv.FormatInt(rn.ID, 10) {
		writeSvcError(w, http.StatusNotFound, "TaskAgentNotFoundException", "No such runner.")
		return
	}
	if rn.Busy {
		writeSvcError(w, http.StatusConflict, "TaskAgentBusyException", "The runner "+rn.Name+" is running a job.")
		return
	}
	s.deleteRunner(rn)
	w.WriteHeader(http.StatusNoContent)
}
