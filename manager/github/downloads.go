package github

import (
	"context"
	"fmt"
)

// RunnerPackage is one archive of GitHub's runner release, as the list
// runner applications endpoint gives it.
type RunnerPackage struct {
	OS       string // linux, osx, win
	Arch     string // x64, arm64, arm
	URL      string
	Filename string
	// SHA256 is the archive's checksum, lower-case hex; the bootstrap
	// refuses an archive that does not match it.
	SHA256 string
}

// ListRunnerApplications asks GitHub which runner archives it currently
// publishes (GET /repos/{owner}/{repo}/actions/runners/downloads): the
// release GitHub wants self-hosted runners to run.
func (c *Client) ListRunnerApplications(ctx context.Context, owner, repo string) ([]RunnerPackage, error) {
	op := fmt.Sprintf("listing runner downloads of %s/%s", owner, repo)
	ds, _, err := c.gh.Actions.ListRunnerApplicationDownloads(ctx, owner, repo)
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]RunnerPackage, 0, len(ds))
	for _, d := range ds {
		out = append(out, RunnerPackage{OS: d.GetOS(), Arch: d.GetArchitecture(), URL: d.GetDownloadURL(),
			Filename: d.GetFilename(), SHA256: d.GetSHA256Checksum()})
	}
	return out, nil
}
