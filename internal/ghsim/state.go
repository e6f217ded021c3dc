package ghsim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// state is everything the simulator knows. It is guarded by Server.mu.
type state struct {
	nextID int64
	users  map[string]*user // by lower-case login
	repos  map[string]*repo // by lower-case "owner/name"
	hooks  map[int64]*hook
	runs   map[int64]*run
	jobs   map[int64]*job
	runner map[int64]*runner
	// comments, statuses and check runs are global so ids are unique.
	comments  map[int64]*comment
	checkRuns map[int64]*checkRun
	buckets   map[string]*bucket
	// writes are the content-creating requests per Authorization header,
	// for the secondary limit; appTokens are installation tokens issued.
	writes    map[string][]time.Time
	appTokens map[string]bool
	// scaleSets is the runner scale-set side of the Actions service.
	scaleSets *scaleSetState
	// svc is the Actions service that runners talk to (actionsvc_*.go).
	svc *actionSvc
	// pkgs are the runner releases of runners/downloads.
	pkgs *packagesState
}

func newState() *state {
	return &state{
		nextID:    1000,
		users:     map[string]*user{},
		repos:     map[string]*repo{},
		hooks:     map[int64]*hook{},
		runs:      map[int64]*run{},
		jobs:      map[int64]*job{},
		runner:    map[int64]*runner{},
		comments:  map[int64]*comment{},
		checkRuns: map[int64]*checkRun{},
		pkgs:      newPackagesState(),
	}
}

func (st *state) id() int64 { st.nextID++; return st.nextID }

type user struct {
	ID    int64
	Login string
	Type  string // User, Organization, Bot
}

// userFor returns the user with login, creating it (as Type User, or
// Organization when org) on first mention.
func (st *state) userFor(login string, org bool) *user {
	k := strings.ToLower(login)
	if u, ok := st.users[k]; ok {
		return u
	}
	t := "User"
	if org {
		t = "Organization"
	} else if strings.HasSuffix(login, "[bot]") {
		t = "Bot"
	}
	u := &user{ID: st.id(), Login: login, Type: t}
	st.users[k] = u
	return u
}

type repo struct {
	ID            int64
	Owner         *user
	Name          string
	Private       bool
	Fork          bool
	Language      string
	DefaultBranch string
	HeadSHA       string // tip of the default branch
	WorkflowDir   string // folder with the workflow files, by file name
	CreatedAt     time.Time
	Collaborators map[string]string // lower-case login -> role
	Labels        map[string]*label // lower-case name -> label
	Issues        map[int]*pull     // PRs by number; issues share the number space
	NextNumber    int
	RunNumbers    map[string]int   // workflow file -> last run number
	WorkflowIDs   map[string]int64 // workflow file -> id
	Statuses      []*status
	Runners       map[string]*runner // by name
}

func (r *repo) FullName() string { return r.Owner.Login + "/" + r.Name }

type label struct {
	ID          int64
	Name        string
	Color       string
	Description string
}

type pull struct {
	ID        int64
	Number    int
	Title     string
	Body      string
	User      *user
	HeadRepo  *repo // the base repo, or a fork
	HeadRef   string
	HeadSHA   string
	BaseRef   string
	BaseSHA   string
	State     string // open, closed
	Merged    bool
	MergedBy  *user
	Labels    []*label
	Events    []*issueEvent
	Comments  []*comment
	CreatedAt time.Time
	UpdatedAt time.Time
	ClosedAt  time.Time
	MergedAt  time.Time
}

type issueEvent struct {
	ID        int64
	Event     string // labeled, unlabeled, closed, merged, ...
	Actor     *user
	Label     *label
	CreatedAt time.Time
}

type comment struct {
	ID        int64
	Repo      *repo
	Number    int
	User      *user
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type status struct {
	ID          int64
	SHA         string
	State       string
	TargetURL   string
	Description string
	Context     string
	Creator     *user
	CreatedAt   time.Time
}

type checkRun struct {
	ID          int64
	Repo        *repo
	Name        string
	HeadSHA     string
	DetailsURL  string
	ExternalID  string
	Status      string
	Conclusion  string
	StartedAt   time.Time
	CompletedAt time.Time
	Title       string
	Summary     string
	Text        string
	SuiteID     int64
	CreatedAt   time.Time
}

type hook struct {
	ID        int64
	Repo      *repo
	URL       string
	Secret    string
	Events    []string // "*" for all
	CreatedAt time.Time
	q         *hookQueue
	Deliv     []*delivery
}

func (h *hook) wants(event string) bool {
	for _, e := range h.Events {
		if e == "*" || e == event {
			return true
		}
	}
	return false
}

type delivery struct {
	ID          int64
	GUID        string
	Event       string
	Action      string
	Body        []byte
	Headers     map[string]string
	Redelivery  bool
	DeliveredAt time.Time
	Duration    time.Duration
	StatusCode  int
	Status      string
	RespBody    string
	RespHeaders map[string]string
	Dropped     bool
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("reading random bytes: %w", err))
	}
	return hex.EncodeToString(b)
}

// guid returns a random version-4 UUID like X-GitHub-Delivery.
func guid() string {
	h := randomHex(16)
	b := []byte(h)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[0:8], b[8:12], b[12:16], b[16:20], b[20:32])
}

// fakeSHA returns a random 40-hex commit id.
func fakeSHA() string { return randomHex(20) }

func (s *Server) repoLocked(owner, name string) *repo {
	return s.st.repos[strings.ToLower(owner+"/"+name)]
}

// sortByID sorts by a key function (ids, or negated ids for newest first).
func sortByID[T any](xs []T, key func(T) int64) {
	sort.Slice(xs, func(i, j int) bool { return key(xs[i]) < key(xs[j]) })
}
