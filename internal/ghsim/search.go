package ghsim

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// searchTerms splits a search query into qualifier:value terms, honouring
// double quotes (label:"🔨 test-with-buildbots").
func searchTerms(q string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for _, c := range q {
		switch {
		case c == '"':
			inQ = !inQ
		case (c == ' ' || c == '+') && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// handleSearchIssues supports the qualifiers buildfleet uses: repo:, is:pr,
// is:issue, is:open, is:closed, is:merged, state:, label: (all must match).
// Issues do not exist in ghsim, so is:issue matches nothing.
func (s *Server) handleSearchIssues(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		writeValidation(w, validationError{Resource: "Search", Code: "missing", Field: "q"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var repos []*repo
	var labels []string
	state, wantIssue, merged := "", false, false
	for _, t := range searchTerms(q) {
		k, v, _ := strings.Cut(t, ":")
		switch strings.ToLower(k) {
		case "repo":
			if o, n, ok := strings.Cut(v, "/"); ok {
				if rp := s.repoLocked(o, n); rp != nil {
					repos = append(repos, rp)
				} else {
					writeValidation(w, validationError{Resource: "Search", Code: "invalid", Field: "q",
						Message: "The listed users and repositories cannot be searched either because the resources do not exist or you do not have permission to view them."})
					return
				}
			}
		case "is", "state", "type":
			switch strings.ToLower(v) {
			case "open", "closed":
				state = strings.ToLower(v)
			case "issue":
				wantIssue = true
			case "merged":
				merged = true
			}
		case "label":
			labels = append(labels, v)
		}
	}
	if repos == nil {
		for _, rp := range s.st.repos {
			repos = append(repos, rp)
		}
	}
	items := []any{}
	for _, rp := range repos {
		nums := make([]int, 0, len(rp.Issues))
		for n := range rp.Issues {
			nums = append(nums, n)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(nums)))
		for _, n := range nums {
			p := rp.Issues[n]
			if wantIssue || (state != "" && p.State != state) || (merged && !p.Merged) || !hasLabels(p, labels) {
				continue
			}
			items = append(items, s.searchItemJSON(rp, p))
		}
	}
	total := len(items)
	writeJSON(w, http.StatusOK, obj{"total_count": total, "incomplete_results": false, "search_type": "lexical", "items": paginate(w, r, items)})
}

func hasLabels(p *pull, want []string) bool {
	for _, name := range want {
		found := false
		for _, l := range p.Labels {
			found = found || strings.EqualFold(l.Name, name)
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Server) searchItemJSON(rp *repo, p *pull) obj {
	api := s.repoAPI(rp)
	n := strconv.Itoa(p.Number)
	html := s.base + "/" + rp.FullName() + "/pull/" + n
	return obj{
		"url": api + "/issues/" + n, "repository_url": api, "labels_url": api + "/issues/" + n + "/labels{/name}",
		"comments_url": api + "/issues/" + n + "/comments", "events_url": api + "/issues/" + n + "/events",
		"html_url": html, "id": p.ID, "node_id": nodeID("PullRequest", p.ID), "number": p.Number,
		"title": p.Title, "user": s.userJSON(p.User), "labels": s.labelsJSON(rp, p.Labels),
		"state": p.State, "locked": false, "assignee": nil, "assignees": []any{}, "milestone": nil,
		"comments": len(p.Comments), "created_at": ts(p.CreatedAt), "updated_at": ts(p.UpdatedAt),
		"closed_at": ts(p.ClosedAt), "author_association": s.authorAssociation(rp, p.User),
		"draft": false, "body": p.Body, "score": 1.0,
		"pull_request": obj{
			"url": api + "/pulls/" + n, "html_url": html, "diff_url": html + ".diff",
			"patch_url": html + ".patch", "merged_at": ts(p.MergedAt),
		},
	}
}
