package ghsim

import (
	"fmt"
	"strings"
)

// RepoSpec describes a repository to create through CreateRepo.
type RepoSpec struct {
	Owner         string `json:"owner"`
	Name          string `json:"name"`
	Org           bool   `json:"org"`     // owner is an organization
	Private       bool   `json:"private"` // private repos give non-collaborators "none"
	DefaultBranch string `json:"default_branch"`
	HeadSHA       string `json:"head_sha"`      // default-branch tip (random when empty)
	WorkflowsDir  string `json:"workflows_dir"` // folder of workflow files, by file name
	Language      string `json:"language"`      // default "Python"
}

// PRSpec describes a pull request to open through OpenPR.
type PRSpec struct {
	Title   string `json:"title"`
	Author  string `json:"author"`
	HeadSHA string `json:"head_sha"` // random when empty
	HeadRef string `json:"head_ref"` // default "feature-<n>"
	Fork    string `json:"fork"`     // owner of a fork the PR comes from; empty: same repo
	Body    string `json:"body"`
}

func splitRepo(full string) (string, string, error) {
	o, n, ok := strings.Cut(full, "/")
	if !ok || o == "" || n == "" {
		return "", "", fmt.Errorf("repository %q: want owner/name", full)
	}
	return o, n, nil
}

func (s *Server) repoByName(full string) (*repo, error) {
	o, n, err := splitRepo(full)
	if err != nil {
		return nil, err
	}
	rp := s.repoLocked(o, n)
	if rp == nil {
		return nil, fmt.Errorf("repository %s: %w", full, errNoRepo)
	}
	return rp, nil
}

// CreateRepo adds a repository. It is an error if it exists.
func (s *Server) CreateRepo(spec RepoSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.createRepoLocked(spec)
	return err
}

func (s *Server) createRepoLocked(spec RepoSpec) (*repo, error) {
	if spec.Owner == "" || spec.Name == "" {
		return nil, fmt.Errorf("repository needs owner and name")
	}
	if s.repoLocked(spec.Owner, spec.Name) != nil {
		return nil, fmt.Errorf("repository %s/%s exists", spec.Owner, spec.Name)
	}
	if spec.DefaultBranch == "" {
		spec.DefaultBranch = "main"
	}
	if spec.HeadSHA == "" {
		spec.HeadSHA = fakeSHA()
	}
	if spec.Language == "" {
		spec.Language = "Python"
	}
	rp := &repo{
		ID: s.st.id(), Owner: s.st.userFor(spec.Owner, spec.Org), Name: spec.Name, Private: spec.Private,
		DefaultBranch: spec.DefaultBranch, HeadSHA: spec.HeadSHA, WorkflowDir: spec.WorkflowsDir,
		Language: spec.Language, CreatedAt: s.now(), Collaborators: map[string]string{}, Labels: map[string]*label{},
		Issues: map[int]*pull{}, RunNumbers: map[string]int{}, WorkflowIDs: map[string]int64{},
		Runners: map[string]*runner{},
	}
	s.st.repos[strings.ToLower(rp.FullName())] = rp
	return rp, nil
}

// AddUser makes login a known GitHub user (with no role anywhere).
func (s *Server) AddUser(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.userFor(login, false)
}

// AddCollaborator gives login a role (admin, maintain, write, triage, read)
// on repo ("owner/name").
func (s *Server) AddCollaborator(repoName, login, role string) error {
	switch role {
	case "admin", "maintain", "write", "triage", "read":
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(repoName)
	if err != nil {
		return err
	}
	s.st.userFor(login, false)
	rp.Collaborators[strings.ToLower(login)] = role
	return nil
}

// OpenPR opens a pull request against the default branch and emits
// pull_request.opened. It returns the PR number.
func (s *Server) OpenPR(repoName string, spec PRSpec) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(repoName)
	if err != nil {
		return 0, err
	}
	if spec.Author == "" {
		spec.Author = rp.Owner.Login
	}
	head := rp
	if spec.Fork != "" && !strings.EqualFold(spec.Fork, rp.Owner.Login) {
		if head = s.repoLocked(spec.Fork, rp.Name); head == nil {
			head, err = s.createRepoLocked(RepoSpec{Owner: spec.Fork, Name: rp.Name, HeadSHA: rp.HeadSHA})
			if err != nil {
				return 0, err
			}
			head.Fork = true
		}
	}
	rp.NextNumber++
	n := rp.NextNumber
	if spec.HeadSHA == "" {
		spec.HeadSHA = fakeSHA()
	}
	if spec.HeadRef == "" {
		spec.HeadRef = fmt.Sprintf("feature-%d", n)
	}
	if spec.Title == "" {
		spec.Title = fmt.Sprintf("Pull request %d", n)
	}
	p := &pull{
		ID: s.st.id(), Number: n, Title: spec.Title, Body: spec.Body, User: s.st.userFor(spec.Author, false),
		HeadRepo: head, HeadRef: spec.HeadRef, HeadSHA: spec.HeadSHA, BaseRef: rp.DefaultBranch,
		BaseSHA: rp.HeadSHA, State: "open", CreatedAt: s.now(), UpdatedAt: s.now(),
	}
	rp.Issues[n] = p
	s.emitPull(rp, p, "opened", p.User, nil)
	return n, nil
}

func (s *Server) pullByNumber(repoName string, n int) (*repo, *pull, error) {
	rp, err := s.repoByName(repoName)
	if err != nil {
		return nil, nil, err
	}
	p := rp.Issues[n]
	if p == nil {
		return nil, nil, fmt.Errorf("%s#%d: no such pull request", repoName, n)
	}
	return rp, p, nil
}

// PushPR moves a PR's head to sha (a fast-forward) and emits
// pull_request.synchronize.
func (s *Server) PushPR(repoName string, n int, sha string) error {
	return s.pushPR(repoName, n, sha, false)
}

// ForcePushPR moves a PR's head to sha by a force push: as on GitHub, the
// PR's events record head_ref_force_pushed, and pull_request.synchronize
// is emitted. ghsim keeps no commit graph, so it cannot tell a
// non-fast-forward push by itself; the caller says so.
func (s *Server) ForcePushPR(repoName string, n int, sha string) error {
	return s.pushPR(repoName, n, sha, true)
}

func (s *Server) pushPR(repoName string, n int, sha string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullByNumber(repoName, n)
	if err != nil {
		return err
	}
	if sha == "" {
		sha = fakeSHA()
	}
	before := p.HeadSHA
	p.HeadSHA, p.UpdatedAt = sha, s.now()
	if force {
		p.Events = append(p.Events, &issueEvent{ID: s.st.id(), Event: "head_ref_force_pushed", Actor: p.User, CreatedAt: s.now()})
	}
	s.emitPull(rp, p, "synchronize", p.User, obj{"before": before, "after": sha})
	return nil
}

// LabelPR adds a label to a PR as login and emits pull_request.labeled.
func (s *Server) LabelPR(repoName string, n int, name, login string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullByNumber(repoName, n)
	if err != nil {
		return err
	}
	s.addLabel(rp, p, name, s.st.userFor(login, false))
	return nil
}

// UnlabelPR removes a label as login and emits pull_request.unlabeled.
func (s *Server) UnlabelPR(repoName string, n int, name, login string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullByNumber(repoName, n)
	if err != nil {
		return err
	}
	if !s.removeLabel(rp, p, name, s.st.userFor(login, false)) {
		return fmt.Errorf("%s#%d has no label %q", repoName, n, name)
	}
	return nil
}

// ClosePR closes (or merges) a PR as login and emits pull_request.closed.
func (s *Server) ClosePR(repoName string, n int, login string, merge bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullByNumber(repoName, n)
	if err != nil {
		return err
	}
	u := s.st.userFor(login, false)
	p.State, p.ClosedAt, p.UpdatedAt = "closed", s.now(), s.now()
	if merge {
		p.Merged, p.MergedAt, p.MergedBy = true, s.now(), u
	}
	s.emitPull(rp, p, "closed", u, nil)
	return nil
}

// AddHook registers a webhook on repo and sends it a ping. Empty events
// means all ("*").
func (s *Server) AddHook(repoName, url, secret string, events []string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(repoName)
	if err != nil {
		return 0, err
	}
	return s.addHook(rp, url, secret, events).ID, nil
}

// Dispatch starts a workflow run as login, like the REST dispatch.
func (s *Server) Dispatch(repoName, file string, inputs map[string]any, login string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(repoName)
	if err != nil {
		return 0, err
	}
	ru, err := s.dispatch(rp, file, rp.DefaultBranch, inputs, s.st.userFor(login, false))
	if err != nil {
		return 0, fmt.Errorf("dispatching %s: %w", file, err)
	}
	return ru.ID, nil
}

// AddFault adds a fault rule.
func (s *Server) AddFault(f Fault) error { return s.faults.add(f) }

// Faults lists the fault rules still in force, with how often each fired.
func (s *Server) Faults() []Fault { return s.faults.list() }

// ClearFaults removes all fault rules.
func (s *Server) ClearFaults() { s.faults.clear() }
