package ghsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// operations are the REST operations ghsim serves, as "METHOD path" of
// GitHub's OpenAPI description. The trimmed spec holds exactly these.
var operations = []string{
	"GET /repos/{owner}/{repo}",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/labels",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
	"DELETE /repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"GET /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/events",
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission",
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
	"GET /repos/{owner}/{repo}/actions/runs",
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}",
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
	"GET /repos/{owner}/{repo}/actions/jobs/{job_id}",
	"POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig",
	"GET /repos/{owner}/{repo}/actions/runners",
	"GET /repos/{owner}/{repo}/actions/runners/downloads",
	"GET /repos/{owner}/{repo}/actions/runners/{runner_id}",
	"DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}",
	"POST /repos/{owner}/{repo}/statuses/{sha}",
	"GET /repos/{owner}/{repo}/commits/{ref}/statuses",
	"GET /repos/{owner}/{repo}/commits/{ref}/status",
	"POST /repos/{owner}/{repo}/check-runs",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}",
	"GET /search/issues",
	"GET /rate_limit",
	"GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries",
	"GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}",
	"POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
}

const specHost = "http://ghsim.test"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

// loadRouter builds, once per test binary, a trimmed OpenAPI document from
// the real api.github.com.json: only our operations and the components they
// reference, so loading takes a fraction of a second.
func loadRouter(t *testing.T) routers.Router {
	t.Helper()
	dir := testenv.NPMPackage(t, "@octokit/openapi")
	specOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join(dir, "generated", "api.github.com.json"))
		if err != nil {
			specErr = err
			return
		}
		trimmed, err := trimSpec(b)
		if err != nil {
			specErr = err
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(trimmed)
		if err != nil {
			specErr = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: specHost}}
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("loading OpenAPI description: %v", specErr)
	}
	return specRouter
}

func trimSpec(b []byte) ([]byte, error) {
	var full map[string]any
	if err := json.Unmarshal(b, &full); err != nil {
		return nil, err
	}
	paths := full["paths"].(map[string]any)
	keep := map[string]any{}
	for _, op := range operations {
		m, p, _ := strings.Cut(op, " ")
		item, _ := paths[p].(map[string]any)
		if item[strings.ToLower(m)] == nil {
			return nil, &os.PathError{Op: "find operation", Path: op, Err: os.ErrNotExist}
		}
		k, _ := keep[p].(map[string]any)
		if k == nil {
			k = map[string]any{}
			if params, ok := item["parameters"]; ok {
				k["parameters"] = params
			}
			keep[p] = k
		}
		k[strings.ToLower(m)] = item[strings.ToLower(m)]
	}
	comps := full["components"].(map[string]any)
	used := map[string]map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, "#/components/") {
				parts := strings.SplitN(strings.TrimPrefix(ref, "#/components/"), "/", 2)
				if used[parts[0]] == nil {
					used[parts[0]] = map[string]any{}
				}
				if _, seen := used[parts[0]][parts[1]]; !seen {
					c := comps[parts[0]].(map[string]any)[parts[1]]
					used[parts[0]][parts[1]] = c
					walk(c)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(keep)
	uc := map[string]any{}
	for k, v := range used {
		uc[k] = v
	}
	if cs, ok := comps["securitySchemes"]; ok {
		uc["securitySchemes"] = cs
	}
	return json.Marshal(map[string]any{
		"openapi": full["openapi"], "info": full["info"], "paths": keep, "components": uc,
	})
}

// validatingTransport checks every request and response against the spec.
type validatingTransport struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string]int
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	u, _ := url.Parse(specHost + req.URL.EscapedPath())
	u.RawQuery = specQuery(req.URL.Query())
	vreq.URL = u
	vreq.Host = u.Host
	route, params, err := v.router.FindRoute(vreq)
	if err != nil {
		v.t.Errorf("%s %s: no route in GitHub's OpenAPI description: %v", req.Method, req.URL.Path, err)
		return http.DefaultTransport.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		v.t.Errorf("request %s %s does not validate: %v", req.Method, route.Path, err)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if why, ok := undocumented[fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)]; ok {
		// Not in the description, but GitHub answers it: check the error shape.
		var e struct {
			Message          *string `json:"message"`
			DocumentationURL *string `json:"documentation_url"`
		}
		if json.Unmarshal(rb, &e) != nil || e.Message == nil || e.DocumentationURL == nil {
			v.t.Errorf("%d to %s %s (%s): not GitHub's error shape: %s", resp.StatusCode, req.Method, route.Path, why, rb)
		}
		v.record(req.Method + " " + route.Path)
		return resp, nil
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(rb)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.t.Errorf("response %d to %s %s does not validate: %v\n%.600s", resp.StatusCode, req.Method, route.Path, err, rb)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used", "X-RateLimit-Reset", "X-RateLimit-Resource"} {
		if resp.Header.Get(h) == "" {
			v.t.Errorf("%s %s: no %s header", req.Method, route.Path, h)
		}
	}
	v.record(req.Method + " " + route.Path)
	return resp, nil
}

func (v *validatingTransport) record(op string) {
	v.mu.Lock()
	v.seen[op]++
	v.mu.Unlock()
}

// specQuery is the query as the description can validate it. The runs
// lists' created parameter is typed date-time there, but its text (and
// GitHub) takes the search date-range syntax, such as >=T or A..B: the
// date-time operands are validated instead.
func specQuery(q url.Values) string {
	if c := q.Get("created"); c != "" {
		c = strings.TrimLeft(c, "<>=")
		if a, b, ok := strings.Cut(c, ".."); ok {
			c = a
			if a == "*" {
				c = b
			}
		}
		q.Set("created", c)
	}
	return q.Encode()
}

// undocumented are answers GitHub gives that its OpenAPI description does
// not list; their bodies are checked for GitHub's error shape instead.
var undocumented = map[string]string{
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches 422": "input validation, e.g. \"Required input 'x' not provided\"",
	"POST /repos/{owner}/{repo}/statuses/{sha} 422":                             "description longer than 140 characters",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs 404":        "unknown workflow",
}

// TestOpenAPIConformance validates, against GitHub's published OpenAPI
// description, every request go-github sends and every response ghsim gives
// across a scenario that uses every operation ghsim serves.
func TestOpenAPIConformance(t *testing.T) {
	router := loadRouter(t)
	s, _ := newTestServer(t, Options{})
	vt := &validatingTransport{t: t, router: router, seen: map[string]int{}}
	c := github.NewClient(&http.Client{Transport: &authTransport{token: testToken, next: vt}})
	c.BaseURL, _ = url.Parse(s.URL() + "/")
	scenario(t, s, c, newHookSink(t))
	var missing []string
	for _, op := range operations {
		if vt.seen[op] == 0 {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("scenario did not exercise:\n%s", strings.Join(missing, "\n"))
	}
}

type authTransport struct {
	token string
	next  http.RoundTripper
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return a.next.RoundTrip(r)
}
