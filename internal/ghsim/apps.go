package ghsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// appLogin is the user an App installation token acts as.
const appLogin = "buildfleet[bot]"

// handleInstallationToken issues an installation token for a JWT signed
// (RS256) by the App Options.AppID. The signature is not checked: ghsim
// knows no public key; the point is the protocol ghinstallation speaks.
func (s *Server) handleInstallationToken(w http.ResponseWriter, r *http.Request) {
	if s.opts.AppID == 0 {
		notFound(w)
		return
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 || parts[2] == "" {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Exp int64           `json:"exp"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &head) != nil || json.Unmarshal(cb, &claims) != nil {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if head.Alg != "RS256" || iss != strconv.FormatInt(s.opts.AppID, 10) || time.Unix(claims.Exp, 0).Before(s.opts.Now()) {
		writeError(w, http.StatusUnauthorized, "'Issuer' claim ('iss') must be an Integer, the App's id, and the token must not be expired")
		return
	}
	tok := "ghs_" + randomHex(18)
	s.mu.Lock()
	if s.st.appTokens == nil {
		s.st.appTokens = map[string]bool{}
	}
	s.st.appTokens[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, obj{
		"token": tok, "expires_at": s.now().Add(time.Hour).Format(time.RFC3339),
		"permissions":          obj{"checks": "write", "statuses": "write", "issues": "write", "actions": "write", "administration": "write"},
		"repository_selection": "all",
	})
}

// mayWriteChecks answers 403 to a check-run write by anything but an App
// installation, as GitHub does, when ghsim has an App configured.
func (s *Server) mayWriteChecks(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.AppID == 0 {
		return true
	}
	if login, _ := r.Context().Value(loginKey{}).(string); login == appLogin {
		return true
	}
	writeError(w, http.StatusForbidden, "You must authenticate via a GitHub App.")
	return false
}
