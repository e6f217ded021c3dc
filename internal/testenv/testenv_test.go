package testenv

import (
	"os"
	"strings"
	"testing"
)

// The version the tests look for is the one `make runners` builds.
func TestActRunnerVersionIsPinned(t *testing.T) {
	b, err := os.ReadFile("../../runner-images/act-runner/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := "require github.com/ChristopherHX/github-act-runner " + ActRunnerVersion + "\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("runner-images/act-runner/go.mod does not require github-act-runner %s", ActRunnerVersion)
	}
}
