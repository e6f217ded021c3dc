package nomad_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/cmd/buildfleet/cli"
	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

func loadExample(t *testing.T, file string) config.Config {
	t.Helper()
	c, err := cli.LoadConfig(cli.LoadOptions{File: file, SkipSecretFiles: true})
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	if len(c.Pools) == 0 {
		t.Fatalf("%s has no pools", file)
	}
	return c
}

// next returns the next update of runner name, skipping others.
func next(t *testing.T, ch <-chan nomad.Update, name string) nomad.Update {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed waiting for %s", name)
			}
			if u.RunnerName == name {
				t.Logf("update %s %s %q @%d", u.RunnerName, u.State, u.Reason, u.Index)
				return u
			}
		case <-timeout:
			t.Fatalf("no update for %s", name)
		}
	}
}

// until reads name's updates until state s, checking they only go forward.
func until(t *testing.T, ch <-chan nomad.Update, name string, s nomad.State) nomad.Update {
	t.Helper()
	order := map[nomad.State]int{nomad.StatePending: 0, nomad.StateBlocked: 1, nomad.StatePlaced: 2, nomad.StateRunning: 3}
	last := -1
	for {
		u := next(t, ch, name)
		r, ok := order[u.State]
		if !ok {
			r = 4
		}
		if r < last {
			t.Errorf("%s went back to %s", name, u.State)
		}
		last = r
		if u.State == s {
			return u
		}
		if r == 4 {
			t.Fatalf("%s ended %s (%s), want %s", name, u.State, u.Reason, s)
		}
	}
}

func testWatch(t *testing.T, f *fixture, linux, bsd config.Pool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.mgr.Watch(ctx, 0)

	// The resync reports runners of the earlier subtests in their final state.
	if u := until(t, ch, "r-secret", nomad.StateComplete); u.GitHubJobID != 101 || u.Pool != "t-linux" {
		t.Errorf("r-secret update %+v", u)
	}

	child, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-watch", GitHubJobID: 505, Attempt: 2, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	u := until(t, ch, "r-watch", nomad.StateRunning)
	if u.DispatchedJobID != child || u.Attempt != 2 || u.AllocID == "" {
		t.Errorf("running update %+v", u)
	}
	poll(t, "the runner to start", func() bool { a := f.alloc(t, child); return a != nil && f.allocFile(a, "mode") != "" })
	f.release(t, f.alloc(t, child), "3")
	u = until(t, ch, "r-watch", nomad.StateFailed)
	t.Logf("failed reason: %s", u.Reason)
	if u.Reason == "" {
		t.Errorf("failed without a reason")
	}

	// A blocked runner: reported with its reason, then stopped.
	bchild, err := f.mgr.DispatchRunner(ctx, bsd, nomad.Runner{Name: "r-wbsd", GitHubJobID: 506, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	u = until(t, ch, "r-wbsd", nomad.StateBlocked)
	if u.Reason != "no eligible host: constraint ${attr.kernel.name} = freebsd filtered 1 node" {
		t.Errorf("blocked reason %q", u.Reason)
	}
	if err := f.mgr.StopRunner(ctx, bchild); err != nil {
		t.Fatal(err)
	}
	last := until(t, ch, "r-wbsd", nomad.StateStopped).Index

	// Cut the watcher; a runner starts and ends while nobody watches; a new
	// watcher from the last index reports it and nothing seen before.
	cancel()
	for range ch {
	}
	gone, err := f.mgr.DispatchRunner(context.Background(), linux, nomad.Runner{Name: "r-away", GitHubJobID: 507, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the unwatched runner to start", func() bool { a := f.alloc(t, gone); return a != nil && f.allocFile(a, "mode") != "" })
	f.release(t, f.alloc(t, gone), "0")
	poll(t, "the unwatched runner to finish", func() bool {
		a := f.alloc(t, gone)
		return a != nil && a.ClientStatus == api.AllocClientStatusComplete
	})

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2 := f.mgr.Watch(ctx2, last)
	for {
		select {
		case u := <-ch2:
			if u.RunnerName == "r-secret" || u.RunnerName == "r-watch" {
				t.Errorf("resumed watch repeated %s %s @%d (from %d)", u.RunnerName, u.State, u.Index, last)
			}
			if u.RunnerName == "r-away" {
				if u.State != nomad.StateComplete {
					t.Errorf("r-away resynced as %s", u.State)
				}
				return
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("resumed watch did not report r-away")
		}
	}
}

// TestWatchReconnects cuts the watcher's connections (a proxy in front of
// the agent drops them) and checks that it resubscribes, resyncs and
// reports a runner that ran while it was cut off.
func TestWatchReconnects(t *testing.T) {
	ag := nomadtest.Start(t, nomadtest.Options{Meta: map[string]string{nomad.DefaultTierMetaKey: "quick"}})
	target, _ := url.Parse(ag.Addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // the event stream is a long response
	proxy := httptest.NewServer(rp)
	defer proxy.Close()

	f := &fixture{ag: ag, mgrAPI: ag.Client, rdv: newRDV(t)}
	f.admin = mustClient(t, ag.Addr, "")
	watched := mustClient(t, proxy.URL, "")
	logs := &syncBuffer{}
	watched.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
	linux := config.Pool{Name: "t-linux", Platform: "linux-" + hostArch(), Tier: config.TierQuick, NomadJob: "runner-t-linux"}
	f.register(t, linux)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watched.Watch(ctx, 0)
	first, err := f.admin.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-before", GitHubJobID: 1, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, ch, "r-before", nomad.StateRunning)

	// Cut every connection while the runner finishes and another one runs.
	proxy.Config.SetKeepAlivesEnabled(false)
	proxy.CloseClientConnections()
	f.release(t, f.alloc(t, first), "0")
	second, err := f.admin.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-during", GitHubJobID: 2, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "r-during to start", func() bool { a := f.alloc(t, second); return a != nil && f.allocFile(a, "mode") != "" })
	f.release(t, f.alloc(t, second), "0")
	proxy.CloseClientConnections()

	until(t, ch, "r-before", nomad.StateComplete)
	until(t, ch, "r-during", nomad.StateComplete)
	if !strings.Contains(logs.String(), "nomad watch interrupted") {
		t.Errorf("the watcher never reconnected; log:\n%s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
