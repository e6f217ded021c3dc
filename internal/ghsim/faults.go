package ghsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault kinds. The first five act on REST calls, the last three on webhooks.
const (
	FaultServerError = "5xx"         // answer Status (default 502)
	FaultTooMany     = "429"         // 429 with Retry-After
	FaultSecondary   = "secondary"   // 403 secondary rate limit with Retry-After
	FaultPrimary     = "primary"     // 403 with X-RateLimit-Remaining: 0
	FaultLatency     = "latency"     // delay, then answer normally
	FaultSlowAnswer  = "slow_answer" // do the work at once, hold the answer back (a client that gives up has still had its effect)
	FaultDrop        = "drop"        // record a failed delivery, send nothing
	FaultDuplicate   = "duplicate"   // deliver twice with the same GUID
	FaultReorder     = "reorder"     // deliver after the next delivery
	// FaultTokenExpiry expires the runner's token of an Actions service
	// call and answers 401 (Service faults only).
	FaultTokenExpiry = "token_expiry"
)

// Fault is one injection rule. It matches REST calls by Method and Path (a
// regular expression on the URL path) or deliveries by Event; it fires for
// the next Count matches (0: until cleared), each with probability Ratio
// (0 means 1).
type Fault struct {
	Kind   string `json:"kind"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Event  string `json:"event,omitempty"`
	// Action narrows a webhook rule to deliveries of that action (e.g.
	// drop only workflow_job "completed").
	Action     string  `json:"action,omitempty"`
	Count      int     `json:"count,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"`
	Status     int     `json:"status,omitempty"`
	RetryAfter int     `json:"retry_after,omitempty"`
	Latency    string  `json:"latency,omitempty"`
	// Service makes the rule act on the Actions service that runners talk
	// to (/_services/...) instead of the REST API: 5xx, latency and
	// token_expiry.
	Service bool `json:"service,omitempty"`

	re    *regexp.Regexp
	delay time.Duration
	Fired int `json:"fired"`
}

func (f *Fault) isHook() bool {
	return f.Kind == FaultDrop || f.Kind == FaultDuplicate || f.Kind == FaultReorder
}

// validate checks f and compiles its pattern.
func (f *Fault) validate() error {
	switch f.Kind {
	case FaultServerError, FaultTooMany, FaultSecondary, FaultPrimary, FaultLatency, FaultSlowAnswer, FaultDrop, FaultDuplicate, FaultReorder, FaultTokenExpiry:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Service && f.Kind != FaultServerError && f.Kind != FaultLatency && f.Kind != FaultTokenExpiry {
		return fmt.Errorf("fault kind %q does not act on the Actions service", f.Kind)
	}
	if f.Kind == FaultTokenExpiry && !f.Service {
		return fmt.Errorf("fault kind %q needs service=true", f.Kind)
	}
	if f.Path != "" {
		re, err := regexp.Compile(f.Path)
		if err != nil {
			return fmt.Errorf("fault path %q: %w", f.Path, err)
		}
		f.re = re
	}
	if f.Latency != "" {
		d, err := time.ParseDuration(f.Latency)
		if err != nil {
			return fmt.Errorf("fault latency %q: %w", f.Latency, err)
		}
		f.delay = d
	}
	if f.Kind == FaultServerError && f.Status == 0 {
		f.Status = http.StatusBadGateway
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = 60
	}
	return nil
}

// ParseFault reads the flag form "kind[:key=value,...]", e.g.
// "5xx:count=3,status=503,path=/actions/" or "drop:event=workflow_job".
func ParseFault(spec string) (Fault, error) {
	kind, rest, _ := strings.Cut(spec, ":")
	f := Fault{Kind: kind}
	for kv := range strings.SplitSeq(rest, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "method":
			f.Method = v
		case "path":
			f.Path = v
		case "event":
			f.Event = v
		case "action":
			f.Action = v
		case "latency":
			f.Latency = v
		case "count":
			f.Count, err = strconv.Atoi(v)
		case "status":
			f.Status, err = strconv.Atoi(v)
		case "retry_after":
			f.RetryAfter, err = strconv.Atoi(v)
		case "ratio":
			f.Ratio, err = strconv.ParseFloat(v, 64)
		case "service":
			f.Service, err = strconv.ParseBool(v)
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return f, fmt.Errorf("fault %q: key %q: %w", spec, k, err)
		}
	}
	return f, f.validate()
}

type faults struct {
	mu    sync.Mutex
	rules []*Fault
}

func newFaults() *faults { return &faults{} }

func (fs *faults) add(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rules = append(fs.rules, &f)
	return nil
}

func (fs *faults) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := []Fault{}
	for _, f := range fs.rules {
		out = append(out, *f)
	}
	return out
}

func (fs *faults) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rules = nil
}

func (fs *faults) pick(ok func(*Fault) bool) *Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.rules {
		if !ok(f) || (f.Ratio > 0 && rand.Float64() >= f.Ratio) {
			continue
		}
		f.Fired++
		if f.Count > 0 && f.Fired >= f.Count {
			fs.rules = append(fs.rules[:i:i], fs.rules[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func (fs *faults) match(method, path string) *Fault {
	return fs.pick(func(f *Fault) bool {
		return !f.isHook() && !f.Service && (f.Method == "" || strings.EqualFold(f.Method, method)) && (f.re == nil || f.re.MatchString(path))
	})
}

// matchService picks a rule for an Actions service call.
func (fs *faults) matchService(method, path string) *Fault {
	return fs.pick(func(f *Fault) bool {
		return f.Service && (f.Method == "" || strings.EqualFold(f.Method, method)) && (f.re == nil || f.re.MatchString(path))
	})
}

func (fs *faults) matchHook(event, action string) *Fault {
	return fs.pick(func(f *Fault) bool {
		return f.isHook() && (f.Event == "" || f.Event == event) && (f.Action == "" || f.Action == action)
	})
}

const secondaryDocs = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"

// apply writes the fault's response and reports true, or (latency) waits
// and reports false so the request goes on.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request, rl rateState, now time.Time) bool {
	h := w.Header()
	secondary := obj{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID " + h.Get("X-GitHub-Request-Id") + ".",
		"documentation_url": secondaryDocs, "status": "",
	}
	switch f.Kind {
	case FaultLatency:
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
		}
		return false
	case FaultServerError:
		rl.setHeaders(h)
		writeError(w, f.Status, http.StatusText(f.Status))
	case FaultTooMany:
		rl.setHeaders(h)
		h.Set("Retry-After", strconv.Itoa(f.RetryAfter))
		secondary["status"] = "429"
		writeJSON(w, http.StatusTooManyRequests, secondary)
	case FaultSecondary:
		rl.setHeaders(h)
		h.Set("Retry-After", strconv.Itoa(f.RetryAfter))
		secondary["status"] = "403"
		writeJSON(w, http.StatusForbidden, secondary)
	case FaultPrimary:
		rl.Used += rl.Remaining
		rl.Remaining = 0
		rl.setHeaders(h)
		writeJSON(w, http.StatusForbidden, obj{
			"message":           "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID " + h.Get("X-GitHub-Request-Id") + " and timestamp " + now.UTC().Format("2006-01-02 15:04:05 UTC") + ".",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
			"status":            "403",
		})
	}
	return true
}
