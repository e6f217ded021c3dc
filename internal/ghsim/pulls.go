package ghsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

func (s *Server) authorAssociation(r *repo, u *user) string {
	switch {
	case u == nil:
		return "NONE"
	case u == r.Owner:
		return "OWNER"
	case r.Collaborators[strings.ToLower(u.Login)] != "":
		return "COLLABORATOR"
	}
	return "NONE"
}

func (s *Server) branchJSON(p *pull, base bool) obj {
	r, ref, sha := p.HeadRepo, p.HeadRef, p.HeadSHA
	if base {
		r, ref, sha = s.baseRepoOf(p), p.BaseRef, p.BaseSHA
	}
	return obj{"label": r.Owner.Login + ":" + ref, "ref": ref, "sha": sha, "user": s.userJSON(r.Owner), "repo": s.repoJSON(r)}
}

// baseRepoOf finds the repository that holds p.
func (s *Server) baseRepoOf(p *pull) *repo {
	for _, r := range s.st.repos {
		if r.Issues[p.Number] == p {
			return r
		}
	}
	return p.HeadRepo
}

func (s *Server) pullJSON(r *repo, p *pull) obj {
	api := s.repoAPI(r)
	html := s.base + "/" + r.FullName() + "/pull/" + strconv.Itoa(p.Number)
	issue := api + "/issues/" + strconv.Itoa(p.Number)
	self := api + "/pulls/" + strconv.Itoa(p.Number)
	href := func(u string) obj { return obj{"href": u} }
	var mergeSHA any
	if p.Merged {
		mergeSHA = p.HeadSHA
	}
	return obj{
		"url": self, "id": p.ID, "node_id": nodeID("PullRequest", p.ID), "html_url": html,
		"diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issue,
		"number": p.Number, "state": p.State, "locked": false, "title": p.Title,
		"user": s.userJSON(p.User), "body": nullStr(p.Body),
		"created_at": ts(p.CreatedAt), "updated_at": ts(p.UpdatedAt), "closed_at": ts(p.ClosedAt),
		"merged_at": ts(p.MergedAt), "merge_commit_sha": mergeSHA,
		"assignee": nil, "assignees": []any{}, "requested_reviewers": []any{}, "requested_teams": []any{},
		"labels": s.labelsJSON(r, p.Labels), "milestone": nil, "draft": false,
		"commits_url":         self + "/commits",
		"review_comments_url": self + "/comments",
		"review_comment_url":  api + "/pulls/comments{/number}",
		"comments_url":        issue + "/comments",
		"statuses_url":        api + "/statuses/" + p.HeadSHA,
		"head":                s.branchJSON(p, false), "base": s.branchJSON(p, true),
		"_links": obj{
			"self": href(self), "html": href(html), "issue": href(issue), "comments": href(issue + "/comments"),
			"review_comments": href(self + "/comments"), "review_comment": href(api + "/pulls/comments{/number}"),
			"commits": href(self + "/commits"), "statuses": href(api + "/statuses/" + p.HeadSHA),
		},
		"author_association": s.authorAssociation(r, p.User), "auto_merge": nil, "active_lock_reason": nil,
		"merged": p.Merged, "mergeable": p.State == "open", "rebaseable": p.State == "open",
		"mergeable_state": "clean", "merged_by": s.userJSON(p.MergedBy),
		"comments": len(p.Comments), "review_comments": 0, "maintainer_can_modify": false,
		"commits": 1, "additions": 1, "deletions": 1, "changed_files": 1,
	}
}

// pullMinimalJSON is the pull-request-minimal shape used in runs and checks.
func (s *Server) pullMinimalJSON(r *repo, p *pull) obj {
	b := func(rr *repo, ref, sha string) obj {
		return obj{"ref": ref, "sha": sha, "repo": obj{"id": rr.ID, "url": s.repoAPI(rr), "name": rr.Name}}
	}
	return obj{
		"id": p.ID, "number": p.Number, "url": s.repoAPI(r) + "/pulls/" + strconv.Itoa(p.Number),
		"head": b(p.HeadRepo, p.HeadRef, p.HeadSHA), "base": b(r, p.BaseRef, p.BaseSHA),
	}
}

// lookupIssue resolves {owner}/{repo} and the issue/PR number of a request,
// answering 404 itself when either is unknown. Callers hold s.mu.
func (s *Server) lookupIssue(w http.ResponseWriter, r *http.Request, param string) (*repo, *pull, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, nil, false
	}
	n, err := strconv.Atoi(r.PathValue(param))
	if err != nil {
		notFound(w)
		return nil, nil, false
	}
	p := rp.Issues[n]
	if p == nil {
		notFound(w)
		return nil, nil, false
	}
	return rp, p, true
}

func (s *Server) lookupRepo(w http.ResponseWriter, r *http.Request) (*repo, bool) {
	rp := s.repoLocked(r.PathValue("owner"), r.PathValue("repo"))
	if rp == nil {
		notFound(w)
		return nil, false
	}
	return rp, true
}

func (s *Server) handleGetPull(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.pullJSON(rp, p))
}

func (s *Server) handleGetRepo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	j := s.repoJSON(rp)
	j["permissions"] = obj{"admin": true, "maintain": true, "push": true, "triage": true, "pull": true}
	writeJSON(w, http.StatusOK, j)
}

// permissionOf maps a role to the legacy "permission" field: GitHub reports
// maintain as write and triage as read there, and the fine role in role_name.
func permissionOf(role string) string {
	switch role {
	case "maintain":
		return "write"
	case "triage":
		return "read"
	}
	return role
}

// handleCollaboratorPermission answers like GitHub: a collaborator gets their
// role; the owner of a user-owned repo is admin; any other existing user gets
// read on a public repo and none on a private one; an unknown login is 404.
func (s *Server) handleCollaboratorPermission(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	login := r.PathValue("username")
	u := s.st.users[strings.ToLower(login)]
	if u == nil {
		notFound(w)
		return
	}
	role := rp.Collaborators[strings.ToLower(login)]
	switch {
	case role != "":
	case u == rp.Owner:
		role = "admin"
	case rp.Private:
		role = "none"
	default:
		role = "read"
	}
	uj := s.userJSON(u).(obj)
	uj["role_name"] = role
	uj["permissions"] = obj{
		"admin": role == "admin", "maintain": role == "admin" || role == "maintain",
		"push":   role == "admin" || role == "maintain" || role == "write",
		"triage": role != "read" && role != "none", "pull": role != "none",
	}
	writeJSON(w, http.StatusOK, obj{"permission": permissionOf(role), "role_name": role, "user": uj})
}

var errNoRepo = fmt.Errorf("no such repository")
