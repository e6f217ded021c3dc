package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// siblingProbe is the runner script of TestRunnersCannotReadEachOther. Each
// of the three runners (one per builder, all on the one host) reports its
// uid, groups, environment and work dir into $RDV, waits until all three
// are up, then tries to read every sibling's JIT config (the template's
// copy in the allocation's secrets dir, and the runner's own copy in its
// work dir), to list and write its work dir and to read its process
// environment, and writes what it got. Only then do the runners take their
// jobs.
const siblingProbe = `r="$RDV/$NOMAD_ALLOC_ID"
id -u > "$r.uid"; id -G > "$r.gids"; env > "$r.env"; pwd > "$r.pwd"; echo $$ > "$r.pid"
touch "$HOME/marker"
if cat "$JIT_CONFIG_FILE" > /dev/null; then echo "OWN-JIT-OK" > "$r.own"; fi
if cat "$ALLOCS/$NOMAD_ALLOC_ID/runner/secrets/jit" > /dev/null 2>&1; then echo "OWN-SECRETS-READ" >> "$r.own"; fi
touch "$r.ready"
ready() { ls "$RDV" | grep -c "\.$1\$"; }
n=0
while [ "$(ready ready)" -lt 3 ] && [ "$n" -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
for f in "$RDV"/*.ready; do
  o=$(basename "$f" .ready)
  [ "$o" = "$NOMAD_ALLOC_ID" ] && continue
  opwd=$(cat "$RDV/$o.pwd"); opid=$(cat "$RDV/$o.pid")
  for p in "$ALLOCS/$o/runner/secrets/jit" "$opwd/jit" "/proc/$opid/environ" "$opwd/marker"; do
    if cat "$p" > /dev/null 2>&1; then echo "READ $p"; else echo "DENIED $p"; fi
  done >> "$r.probe"
  if ls "$opwd" > /dev/null 2>&1; then echo "LISTED $opwd" >> "$r.probe"; else echo "DENIED $opwd" >> "$r.probe"; fi
  if touch "$opwd/intruder" 2> /dev/null; then echo "WROTE $opwd/intruder" >> "$r.probe"; fi
done
touch "$r.probed"
n=0
while [ "$(ready probed)" -lt 3 ] && [ "$n" -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
exec "$GHSIM" runner
`

// TestRunnersCannotReadEachOther runs three builders of one request at once
// on one host, through the job's own bootstrap (isolate.sh, delivered by
// the job), and checks from inside each task: a uid of its own, not root,
// no group but its own; an environment without the agent's variables or any
// secret but the path of its own JIT config; no way into a sibling's JIT
// config (either copy), work dir or process environment. After the jobs,
// each work dir is gone.
func TestRunnersCannotReadEachOther(t *testing.T) {
	rdv := runnerDir(t, 0o1777)
	h, ag := newFleetHarnessWith(t, fleetSetup{script: "RDV=" + rdv + "\n" + siblingProbe})
	// Open the agent's data dir as a packaged agent's is, so that only the
	// files' own modes protect the secrets dirs.
	if err := os.Chmod(ag.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(3, 90*time.Second)
	for c, s := range h.finalStatuses() {
		if s.State != "success" {
			t.Errorf("%s: %+v, want success", c, s)
		}
	}
	read := func(alloc, what string) string {
		b, _ := os.ReadFile(filepath.Join(rdv, alloc+"."+what))
		return strings.TrimSpace(string(b))
	}
	readies, _ := filepath.Glob(filepath.Join(rdv, "*.ready"))
	if len(readies) != 3 {
		t.Fatalf("%d runners reported, want 3", len(readies))
	}
	uids := map[string]bool{}
	for _, f := range readies {
		a := strings.TrimSuffix(filepath.Base(f), ".ready")
		uid, gids := read(a, "uid"), read(a, "gids")
		if uid == "" || uid == "0" || uids[uid] {
			t.Errorf("runner %s: uid %q, want a non-root uid of its own (others: %v)", a, uid, uids)
		}
		uids[uid] = true
		if gids != uid {
			t.Errorf("runner %s: groups %q, want only its own group %s", a, gids, uid)
		}
		env := read(a, "env")
		for _, line := range strings.Split(env, "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch {
			case strings.Contains(v, "eyJ"): // a JIT config is base64 of JSON
				t.Errorf("runner %s: %s holds a JIT config", a, k)
			case k == "NOMAD_TOKEN" || k == "VAULT_TOKEN" || k == "NOMAD_SECRETS_DIR" || k == "GITHUB_TOKEN" ||
				strings.HasPrefix(k, "BUILDFLEET_") || strings.HasPrefix(k, "AWS_"):
				t.Errorf("runner %s: environment has %s", a, k)
			}
		}
		if !strings.Contains(env, "JIT_CONFIG_FILE="+read(a, "pwd")+"/jit") {
			t.Errorf("runner %s: no JIT_CONFIG_FILE in its work dir; env:\n%s", a, env)
		}
		if got := read(a, "own"); got != "OWN-JIT-OK" {
			t.Errorf("runner %s: own JIT config access %q, want its copy readable and the secrets dir's not", a, got)
		}
		probe := read(a, "probe")
		t.Logf("runner %s: uid %s, groups %s, probes:\n%s", a, uid, gids, probe)
		if n := strings.Count(probe, "DENIED"); n != 2*5 || strings.Contains(probe, "READ ") ||
			strings.Contains(probe, "LISTED") || strings.Contains(probe, "WROTE") {
			t.Errorf("runner %s reached a sibling:\n%s", a, probe)
		}
		eventually(t, "the work dir of "+a+" removed", func() bool {
			_, err := os.Stat(filepath.Join(read(a, "pwd"), "marker"))
			return os.IsNotExist(err)
		})
	}
}
