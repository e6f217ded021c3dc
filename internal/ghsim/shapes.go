package ghsim

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// This file renders state as GitHub's JSON objects. Each builder emits the
// union of the fields GitHub's OpenAPI description requires and the fields
// GitHub's webhook examples carry, so both REST responses and webhook
// payloads can share it.

func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "0:%s%d", kind, id))
}

func (s *Server) userJSON(u *user) any {
	if u == nil {
		return nil
	}
	api := s.base + "/users/" + u.Login
	return obj{
		"login": u.Login, "id": u.ID, "node_id": nodeID("User", u.ID),
		"avatar_url":          s.base + "/avatars/u/" + fmt.Sprint(u.ID),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            s.base + "/" + u.Login,
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                u.Type,
		"user_view_type":      "public",
		"site_admin":          false,
	}
}

func (s *Server) repoAPI(r *repo) string { return s.base + "/repos/" + r.FullName() }

func (s *Server) repoJSON(r *repo) obj {
	if r == nil {
		return nil
	}
	api := s.repoAPI(r)
	html := s.base + "/" + r.FullName()
	vis := "public"
	if r.Private {
		vis = "private"
	}
	open := 0
	for _, p := range r.Issues {
		if p.State == "open" {
			open++
		}
	}
	created := r.CreatedAt
	return obj{
		"id": r.ID, "node_id": nodeID("Repository", r.ID), "name": r.Name, "full_name": r.FullName(),
		"private": r.Private, "owner": s.userJSON(r.Owner), "html_url": html, "description": nil,
		"fork": r.Fork, "url": api,
		"forks_url":         api + "/forks",
		"keys_url":          api + "/keys{/key_id}",
		"collaborators_url": api + "/collaborators{/collaborator}",
		"teams_url":         api + "/teams",
		"hooks_url":         api + "/hooks",
		"issue_events_url":  api + "/issues/events{/number}",
		"events_url":        api + "/events",
		"assignees_url":     api + "/assignees{/user}",
		"branches_url":      api + "/branches{/branch}",
		"tags_url":          api + "/tags",
		"blobs_url":         api + "/git/blobs{/sha}",
		"git_tags_url":      api + "/git/tags{/sha}",
		"git_refs_url":      api + "/git/refs{/sha}",
		"trees_url":         api + "/git/trees{/sha}",
		"statuses_url":      api + "/statuses/{sha}",
		"languages_url":     api + "/languages",
		"stargazers_url":    api + "/stargazers",
		"contributors_url":  api + "/contributors",
		"subscribers_url":   api + "/subscribers",
		"subscription_url":  api + "/subscription",
		"commits_url":       api + "/commits{/sha}",
		"git_commits_url":   api + "/git/commits{/sha}",
		"comments_url":      api + "/comments{/number}",
		"issue_comment_url": api + "/issues/comments{/number}",
		"contents_url":      api + "/contents/{+path}",
		"compare_url":       api + "/compare/{base}...{head}",
		"merges_url":        api + "/merges",
		"archive_url":       api + "/{archive_format}{/ref}",
		"downloads_url":     api + "/downloads",
		"issues_url":        api + "/issues{/number}",
		"pulls_url":         api + "/pulls{/number}",
		"milestones_url":    api + "/milestones{/number}",
		"notifications_url": api + "/notifications{?since,all,participating}",
		"labels_url":        api + "/labels{/name}",
		"releases_url":      api + "/releases{/id}",
		"deployments_url":   api + "/deployments",
		"created_at":        ts(created), "updated_at": ts(created), "pushed_at": ts(created),
		"git_url":   strings.Replace(html, "http", "git", 1) + ".git",
		"ssh_url":   "git@" + strings.TrimPrefix(strings.TrimPrefix(s.base, "http://"), "https://") + ":" + r.FullName() + ".git",
		"clone_url": html + ".git",
		"svn_url":   html,
		"homepage":  nil, "size": 0, "stargazers_count": 0, "watchers_count": 0,
		"language": r.Language, "has_issues": true, "has_projects": true, "has_downloads": true,
		"has_wiki": true, "has_pages": false, "has_discussions": false, "forks_count": 0,
		"mirror_url": nil, "archived": false, "disabled": false, "open_issues_count": open,
		"license": nil, "allow_forking": true, "is_template": false,
		"web_commit_signoff_required": false, "topics": []any{}, "visibility": vis,
		"forks": 0, "open_issues": open, "watchers": 0, "default_branch": r.DefaultBranch,
		"subscribers_count": 0, "network_count": 0, "custom_properties": obj{},
		"allow_merge_commit": true, "allow_rebase_merge": true, "allow_squash_merge": true,
		"allow_auto_merge": false, "delete_branch_on_merge": false, "allow_update_branch": false,
		"use_squash_pr_title_as_default": false, "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
		"squash_merge_commit_message": "COMMIT_MESSAGES", "merge_commit_title": "MERGE_MESSAGE",
		"merge_commit_message": "PR_TITLE",
	}
}

// orgJSON is the "organization" object of webhook payloads for org-owned repos.
func (s *Server) orgJSON(u *user) obj {
	api := s.base + "/orgs/" + u.Login
	return obj{
		"login": u.Login, "id": u.ID, "node_id": nodeID("Organization", u.ID), "url": api,
		"repos_url": api + "/repos", "events_url": api + "/events", "hooks_url": api + "/hooks",
		"issues_url": api + "/issues", "members_url": api + "/members{/member}",
		"public_members_url": api + "/public_members{/member}",
		"avatar_url":         s.base + "/avatars/u/" + fmt.Sprint(u.ID), "description": "",
	}
}

func (s *Server) labelJSON(r *repo, l *label) obj {
	return obj{
		"id": l.ID, "node_id": nodeID("Label", l.ID),
		"url":  s.repoAPI(r) + "/labels/" + pathEscape(l.Name),
		"name": l.Name, "color": l.Color, "default": false, "description": l.Description,
	}
}

func (s *Server) labelsJSON(r *repo, ls []*label) []any {
	out := []any{}
	for _, l := range ls {
		out = append(out, s.labelJSON(r, l))
	}
	return out
}

// appJSON is the GitHub App that check runs report as ("GitHub Actions"
// stands in for any app; ghsim has no App identities).
func (s *Server) appJSON() obj {
	owner := &user{ID: 9919, Login: "github", Type: "Organization"}
	return obj{
		"id": 15368, "slug": "github-actions", "node_id": nodeID("App", 15368), "client_id": "Iv1.ghsim",
		"owner": s.userJSON(owner), "name": "GitHub Actions", "description": "",
		"external_url": s.base + "/features/actions", "html_url": s.base + "/apps/github-actions",
		"created_at": "2018-07-30T09:30:17Z", "updated_at": "2019-12-10T19:04:12Z",
		"permissions": appPermissions(),
		"events":      []any{"check_run", "check_suite", "workflow_run", "workflow_job"},
	}
}

func (s *Server) installationJSON() obj {
	return obj{"id": s.opts.InstallationID, "node_id": nodeID("Installation", s.opts.InstallationID)}
}

func (s *Server) simpleCommitJSON(sha string, t time.Time) obj {
	return obj{
		"id": sha, "tree_id": sha, "message": "ghsim commit " + sha[:7], "timestamp": ts(t),
		"author":    obj{"name": "ghsim", "email": "ghsim@example.invalid"},
		"committer": obj{"name": "ghsim", "email": "ghsim@example.invalid"},
	}
}

// pathEscape escapes one path segment the way GitHub's url fields do.
func pathEscape(seg string) string {
	var b strings.Builder
	for _, c := range []byte(seg) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// appPermissions are a GitHub App's permissions; the set is the union of
// those in GitHub's published check_run examples.
func appPermissions() obj {
	p := obj{}
	for _, k := range []string{"actions", "administration", "checks", "contents", "deployments", "issues",
		"members", "organization_administration", "organization_hooks", "organization_packages",
		"organization_plan", "organization_projects", "organization_user_blocking", "packages", "pages",
		"pull_requests", "repository_hooks", "repository_projects", "security_events", "statuses",
		"team_discussions", "vulnerability_alerts"} {
		p[k] = "write"
	}
	p["metadata"] = "read"
	return p
}
