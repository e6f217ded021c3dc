package ghsim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// A runner proves who it is as an OAuth client with a JWT client assertion
// (RFC 7523) signed by the key of its JIT config, and gets a bearer token
// for the Actions service: github-act-runner protocol/task_agent.go
// (Authorize) and actions/runner's VssOAuthJwtBearerClientCredential. The
// assertion's iss and sub are the client id, aud is the token URL; RS256,
// or PS256 when FIPS cryptography is required. A token expires; the runner
// then gets a 401 and asks for a new one.

// runnerTokenTTL is how long a runner's access token lasts (guess: GitHub
// does not document it; the runner only reacts to 401).
const runnerTokenTTL = time.Hour

// svcToken is an Actions service access token: a runner's own, or the
// token of one job (jobID set) that its worker uses for timeline and logs.
type svcToken struct {
	runnerID int64
	jobID    int64
	expires  time.Time
}

// actionSvc is the state of the Actions service, guarded by Server.mu.
type actionSvc struct {
	creds    map[int64]*runnerCreds // by runner id
	tokens   map[string]*svcToken
	sessions map[string]*svcSession
	requests map[int64]*jobRequest  // by request id
	plans    map[string]*jobRequest // by plan id
	nextMsg  int64
}

// svc returns the Actions service state, made on first use. Callers hold
// s.mu.
func (s *Server) svc() *actionSvc {
	if s.st.svc == nil {
		s.st.svc = &actionSvc{
			creds: map[int64]*runnerCreds{}, tokens: map[string]*svcToken{},
			sessions: map[string]*svcSession{}, requests: map[int64]*jobRequest{}, plans: map[string]*jobRequest{},
		}
	}
	return s.st.svc
}

// handleOAuthToken exchanges a signed client assertion for a token.
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		writeJSON(w, http.StatusBadRequest, obj{"error": "unsupported_grant_type"})
		return
	}
	client := r.PathValue("client")
	s.mu.Lock()
	defer s.mu.Unlock()
	var rid int64
	var cr *runnerCreds
	for id, c := range s.svc().creds {
		if c.clientID == client {
			rid, cr = id, c
		}
	}
	// A runner that was deleted has no credentials left: invalid_client is
	// what the runner takes for "removed from GitHub".
	if cr == nil || s.st.runner[rid] == nil {
		writeJSON(w, http.StatusBadRequest, obj{"error": "invalid_client", "error_description": "unknown client"})
		return
	}
	if err := verifyAssertion(r.PostForm.Get("client_assertion"), cr, s.base+tokenRoot+client, s.opts.Now()); err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"error": "invalid_client", "error_description": err.Error()})
		return
	}
	tok := randomHex(24)
	s.svc().tokens[tok] = &svcToken{runnerID: rid, expires: s.opts.Now().Add(runnerTokenTTL)}
	writeJSON(w, http.StatusOK, obj{"access_token": tok, "token_type": "bearer", "expires_in": int(runnerTokenTTL.Seconds())})
}

// verifyAssertion checks a JWT client assertion against the runner's key.
func verifyAssertion(jwt string, cr *runnerCreds, audience string, now time.Time) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("client assertion is not a JWT")
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &head) != nil || json.Unmarshal(cb, &claims) != nil {
		return errors.New("client assertion cannot be decoded")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var err error
	switch head.Alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(cr.pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		err = rsa.VerifyPSS(cr.pub, crypto.SHA256, digest[:], sig, nil)
	default:
		return errors.New("client assertion algorithm " + head.Alg + " is not RS256 or PS256")
	}
	if err != nil {
		return errors.New("client assertion signature does not verify")
	}
	aud := claims.Aud
	if l, ok := aud.([]any); ok && len(l) == 1 {
		aud = l[0]
	}
	const skew = 5 * time.Minute
	switch {
	case claims.Iss != cr.clientID || claims.Sub != cr.clientID:
		return errors.New("client assertion iss and sub must be the client id")
	case aud != audience:
		return errors.New("client assertion aud must be the token URL")
	case time.Unix(claims.Exp, 0).Before(now):
		return errors.New("client assertion expired")
	case time.Unix(claims.Nbf, 0).After(now.Add(skew)):
		return errors.New("client assertion not yet valid")
	}
	return nil
}

// svcAuth authenticates an Actions service call by its bearer token. An
// unknown or expired token is 401, after which a runner asks for a new one.
// Callers hold s.mu.
func (s *Server) svcAuth(w http.ResponseWriter, r *http.Request) (*svcToken, bool) {
	t := s.svc().tokens[bearerToken(r)]
	if t == nil || !s.opts.Now().Before(t.expires) {
		writeSvcError(w, http.StatusUnauthorized, "VssUnauthorizedException", "The access token is missing, invalid or expired.")
		return nil, false
	}
	s.seen(s.st.runner[t.runnerID])
	return t, true
}

// writeSvcError writes the Azure DevOps style error the Actions service
// answers with; runners look for typeKey in the text.
func writeSvcError(w http.ResponseWriter, code int, typeKey, msg string) {
	writeJSON(w, code, obj{
		"$id": "1", "innerException": nil, "message": msg,
		"typeName": "GitHub.DistributedTask.WebApi." + typeKey + ", Sdk", "typeKey": typeKey, "errorCode": 0, "eventId": 3000,
	})
}

// bearerToken is the token of r's Authorization header, or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// forgetRunner drops a deleted runner's credentials, tokens and sessions:
// a JIT config is dead once its runner is gone. Callers hold s.mu.
func (s *Server) forgetRunner(id int64) {
	sv := s.svc()
	delete(sv.creds, id)
	for tok, t := range sv.tokens {
		if t.runnerID == id && t.jobID == 0 {
			delete(sv.tokens, tok)
		}
	}
	for sid, sess := range sv.sessions {
		if sess.runnerID == id {
			delete(sv.sessions, sid)
		}
	}
}
