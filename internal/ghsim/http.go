package ghsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Call is one REST request the server received, for the control API.
type Call struct {
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Status int       `json:"status"`
	Time   time.Time `json:"time"`
	Fault  string    `json:"fault,omitempty"`
}

const docsURL = "https://docs.github.com/rest"

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets long-polls flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// isAPI tells REST paths (authenticated, rate limited, faultable) from the
// control API, the runner protocol and the HTML pages.
func isAPI(p string) bool {
	return strings.HasPrefix(p, "/repos/") || p == "/rate_limit" || strings.HasPrefix(p, "/search/")
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.base == "" {
		s.base = "http://" + r.Host
	}
	s.mu.Unlock()
	// GitHub Enterprise Server serves the REST API under /api/v3; clients
	// that derive the API root from a web URL (ARC's) go there.
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3/"); ok {
		r.URL.Path, r.URL.RawPath = "/"+p, ""
	}
	if isRunnerService(r.URL.Path) {
		s.serveService(w, r)
		return
	}
	if !isAPI(r.URL.Path) {
		s.mux.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Time: s.now()}
	defer func() {
		call.Status = sw.code
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}()
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	w.Header().Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(4))+":"+strings.ToUpper(randomHex(4)))
	login, ok := s.authenticate(sw, r)
	if !ok {
		return
	}
	resource := "core"
	if strings.HasPrefix(r.URL.Path, "/search/") {
		resource = "search"
	}
	rl := s.spend(r, resource)
	if wait := s.secondaryWait(r); wait > 0 {
		call.Fault = "secondary_limit"
		writeSecondary(sw, rl, wait)
		return
	}
	var slow *Fault
	if f := s.faults.match(r.Method, r.URL.Path); f != nil {
		call.Fault = f.Kind
		if f.Kind == FaultSlowAnswer {
			slow = f
		} else if f.apply(sw, r, rl, s.opts.Now()) {
			return
		}
	}
	rl.setHeaders(sw.Header())
	r = r.WithContext(withLogin(r.Context(), login))
	if _, pattern := s.mux.Handler(r); pattern == "" {
		notFound(sw)
		return
	}
	if slow != nil {
		s.serveSlowly(sw, r, slow.delay)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// serveSlowly handles the request to the end, whatever the client does,
// and only then, after delay, answers: like a GitHub that created the run
// or the comment but whose answer never reached a client that died.
func (s *Server) serveSlowly(w *statusWriter, r *http.Request, delay time.Duration) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the body")
		return
	}
	r = r.WithContext(context.WithoutCancel(r.Context()))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, r)
	time.Sleep(delay)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// authenticate checks the Authorization header: "Bearer X" or "token X".
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	var tok string
	for _, p := range []string{"Bearer ", "bearer ", "token ", "Token "} {
		if strings.HasPrefix(h, p) {
			tok = strings.TrimSpace(h[len(p):])
		}
	}
	if b, ok := strings.CutPrefix(h, "Basic "); ok {
		// Basic auth with a token as the password, as GitHub accepts it
		// (ARC's client sends "github:<PAT>").
		if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b)); err == nil {
			_, tok, _ = strings.Cut(string(dec), ":")
		}
	}
	if h == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication")
		return "", false
	}
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return "", false
	}
	s.mu.Lock()
	app := s.st.appTokens[tok]
	s.mu.Unlock()
	if app {
		return appLogin, true
	}
	if len(s.opts.Tokens) == 0 {
		return s.opts.DefaultLogin, true
	}
	login, ok := s.opts.Tokens[tok]
	if !ok {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return "", false
	}
	return login, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError writes GitHub's error shape.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, obj{"message": msg, "documentation_url": docsURL, "status": strconv.Itoa(code)})
}

// validationError is a fieldError for 422 "Validation Failed".
type validationError struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message,omitempty"`
}

func writeValidation(w http.ResponseWriter, errs ...validationError) {
	writeJSON(w, http.StatusUnprocessableEntity, obj{
		"message": "Validation Failed", "errors": errs,
		"documentation_url": docsURL, "status": "422",
	})
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "Not Found") }

// decodeBody decodes a JSON request body; on failure it answers 400 like
// GitHub ("Problems parsing JSON") and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

// obj is a JSON object under construction.
type obj = map[string]any

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func pageParams(r *http.Request) (page, perPage int) {
	page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	perPage, _ = strconv.Atoi(r.URL.Query().Get("per_page"))
	if page < 1 {
		page = 1
	}
	if perPage < 1 {
		perPage = 30
	}
	if perPage > 100 {
		perPage = 100
	}
	return page, perPage
}

// paginate slices items for the request's page and sets a Link header.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	page, per := pageParams(r)
	start := (page - 1) * per
	if start >= len(items) {
		return []T{}
	}
	end := min(start+per, len(items))
	if end < len(items) {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		u.RawQuery = q.Encode()
		w.Header().Set("Link", "<"+u.String()+">; rel=\"next\"")
	}
	return items[start:end]
}

// jsonRaw decodes a JSON document for embedding, or returns fallback.
func jsonRaw(b []byte, fallback any) any {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return fallback
	}
	return v
}

// errf is fmt.Errorf, named short for the many wrapped errors here.
var errf = fmt.Errorf
