package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runnerPrelude starts every runner script of the end-to-end tests: it
// records the runner's uid and groups in $IDS (one file per allocation)
// and refuses to go on as uid 0 or with group 0, so that no runner of a
// test ever runs PR-like code as root; checkRunnerIDs fails the test if
// one did.
const runnerPrelude = `echo "$(id -u) $(id -G)" > "$IDS/$NOMAD_ALLOC_ID"
case " $(id -u) $(id -G) " in
*" 0 "*) echo "runner runs as uid 0 or with group 0: $(id)" >&2; exit 97 ;;
esac
`

// checkRunnerIDs fails t if a runner recorded by runnerPrelude ran as uid
// 0 or with group 0.
func checkRunnerIDs(t testing.TB, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("runner ids %s: %v", f, err)
			continue
		}
		for _, id := range strings.Fields(string(b)) {
			if id == "0" {
				t.Errorf("runner of allocation %s ran with uid/gids %q: root or root's group", filepath.Base(f), strings.TrimSpace(string(b)))
			}
		}
	}
}
