// Package scaleset is the demand source of pools with source "scaleset":
// a runner scale set on GitHub per pool and repository, whose message
// queue says which jobs wait for the pool, instead of workflow_job
// webhooks. It speaks the Actions service through ARC's client
// (github.com/actions/actions-runner-controller/github/actions).
//
// Only the source differs: each job message becomes a workflow_job
// delivery in the store, in GitHub's payload shape (plus the scale set's
// request id), and the fleet handles it as it handles a webhook — the
// same runner per job on Nomad, the same secret delivery, failure
// handling and reporting. The fleet acquires a job for the set only once
// it has checked that the job belongs to a run buildfleet dispatched
// (security model, point 6), and asks the runner's JIT config through the
// set (Acquire, GenerateJITConfig).
//
// Persist, acknowledge, then act: a message is deleted from GitHub's queue
// only after its deliveries are stored, so a crash loses nothing; jobs
// that came while the manager was down wait in the queue (available, or
// in the acquirable list a new session reads first). The session is
// deleted on shutdown; its id is kept in the store, so that after a crash
// the stale session (409 on create) is deleted and a new one opened.
package scaleset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/actions/actions-runner-controller/github/actions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// GitHub is what the source needs from GitHub's REST API: the jobs of a
// run, to turn a message (run id and job name) into the job.
type GitHub interface {
	RunJobs(ctx context.Context, owner, repo string, runID int64) ([]github.Job, error)
}

var _ GitHub = (*github.Client)(nil)

// Options configure a Source.
type Options struct {
	Config config.Config
	Store  *store.Store
	GitHub GitHub
	// NewService builds the Actions service client of a repository
	// (default NewService with Config.GitHub).
	NewService func(repo string) (Service, error)
	// Registerer receives the call metrics; nil means none.
	Registerer prometheus.Registerer
	// Notify is called when deliveries were stored (wakes the fleet).
	Notify func()
	Logger *slog.Logger
	// Owner names this manager on the session (default the host name).
	Owner string
	// Backoff is the first wait after a failure, doubled up to a minute
	// (default 2s).
	Backoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Source runs one listener per scale-set pool and repository.
type Source struct {
	listeners map[string]*listener // by pool + "\x00" + repo
}

// New builds the listeners; it contacts nobody.
func New(o Options) (*Source, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NewService == nil {
		gh, calls := o.Config.GitHub, newCalls(o.Registerer)
		o.NewService = func(repo string) (Service, error) { return NewService(gh, repo, calls) }
	}
	if o.Owner == "" {
		o.Owner, _ = os.Hostname()
		if o.Owner == "" {
			o.Owner = "buildfleet"
		}
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func() {}
	}
	s := &Source{listeners: map[string]*listener{}}
	// One client per repository: the pools' listeners share its admin
	// token (one registration every hour, not one per pool).
	svcs := map[string]Service{}
	runs := &runCache{gh: o.GitHub}
	for _, p := range o.Config.ScaleSetPools() {
		for _, r := range o.Config.Repositories {
			svc, ok := svcs[r.Name]
			if !ok {
				var err error
				if svc, err = o.NewService(r.Name); err != nil {
					return nil, err
				}
				svcs[r.Name] = svc
			}
			s.listeners[key(p.Name, r.Name)] = &listener{
				o: o, pool: p, repo: r.Name, svc: svc, runs: runs,
				log: o.Logger.With("pool", p.Name, "repo", r.Name, "scale_set", p.ScaleSet.Name),
			}
		}
	}
	return s, nil
}

func key(pool, repo string) string { return pool + "\x00" + strings.ToLower(repo) }

// Run runs the listeners until ctx ends, then deletes their sessions.
func (s *Source) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(ctx) }()
	}
	wg.Wait()
}

// Acquire asks GitHub to assign the job of a runner request to the pool's
// scale set. The fleet calls it for jobs of runs buildfleet dispatched,
// and only those. A request GitHub did not hand over (cancelled, taken
// already) is not an error: the job's completion follows, and a runner
// started for it leaves with nothing taken.
func (s *Source) Acquire(ctx context.Context, pool, repo string, requestID int64) error {
	l := s.listeners[key(pool, repo)]
	if l == nil {
		return fmt.Errorf("acquiring request %d: pool %s has no scale set on %s", requestID, pool, repo)
	}
	return l.acquire(ctx, requestID)
}

// GenerateJITConfig registers a runner in the pool's scale set and returns
// its id and JIT config. A name already taken is github.ErrConflict.
func (s *Source) GenerateJITConfig(ctx context.Context, pool, repo, name string) (int64, config.Secret, error) {
	l := s.listeners[key(pool, repo)]
	if l == nil {
		return 0, "", fmt.Errorf("JIT config of %s: pool %s has no scale set on %s", name, pool, repo)
	}
	set := l.scaleSet()
	if set == nil {
		return 0, "", fmt.Errorf("JIT config of %s: scale set of %s not known yet: %w", name, pool, ErrNoSession)
	}
	jit, err := l.svc.GenerateJitRunnerConfig(ctx, &actions.RunnerScaleSetJitRunnerSetting{Name: name, WorkFolder: "_work"}, set.Id)
	if statusOf(err) == 409 {
		// The fleet's own test for a name taken by an earlier try.
		return 0, "", fmt.Errorf("JIT config of %s: %w", name, github.ErrConflict)
	}
	if err != nil {
		return 0, "", fmt.Errorf("JIT config of %s through scale set %d: %w", name, set.Id, err)
	}
	if jit == nil || jit.Runner == nil || jit.EncodedJITConfig == "" {
		return 0, "", errors.New("JIT config of " + name + ": answer without runner or config")
	}
	return int64(jit.Runner.Id), config.Secret(jit.EncodedJITConfig), nil
}
