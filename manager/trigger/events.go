package trigger

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// pullRequestEvent is the part of GitHub's pull_request webhook payload
// that the trigger reads. Only the manager/github package imports
// go-github, so webhook payloads have their own small types here.
type pullRequestEvent struct {
	Action string `json:"action"`
	Number int    `json:"number"`
	Label  *struct {
		Name string `json:"name"`
	} `json:"label"`
	PullRequest struct {
		Number int    `json:"number"`
		State  string `json:"state"`
		Merged bool   `json:"merged"`
		Head   struct {
			SHA  string `json:"sha"`
			Repo *struct {
				FullName string `json:"full_name"`
			} `json:"repo"`
		} `json:"head"`
	} `json:"pull_request"`
	Repository struct {
		FullName      string `json:"full_name"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
}

var (
	shaRE   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$`)
)

// parsePullRequest decodes and checks a pull_request payload. Errors say
// which field is wrong; they are permanent (a redelivery carries the same
// bytes).
func parsePullRequest(b []byte) (pullRequestEvent, error) {
	var e pullRequestEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("pull_request payload: %w", err)
	}
	if e.Action != "labeled" {
		return e, nil
	}
	switch {
	case e.Label == nil || e.Label.Name == "":
		return e, fmt.Errorf("pull_request.labeled payload: missing label.name")
	case e.Repository.FullName == "":
		return e, fmt.Errorf("pull_request.labeled payload: missing repository.full_name")
	case e.PullRequest.Number <= 0:
		return e, fmt.Errorf("pull_request.labeled payload: missing pull_request.number")
	case !shaRE.MatchString(e.PullRequest.Head.SHA):
		return e, fmt.Errorf("pull_request.labeled payload: pull_request.head.sha is not 40 hex digits")
	case !loginRE.MatchString(e.Sender.Login):
		return e, fmt.Errorf("pull_request.labeled payload: sender.login is missing or malformed")
	}
	return e, nil
}
