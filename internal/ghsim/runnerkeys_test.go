package ghsim

import (
	"testing"
	"testing/synctest"
	"time"
)

// A taken key is replaced once JIT configs are quiet, so the next runner's
// key is ready; no key is handed out twice; closing the server stops the
// refill (synctest fails on a goroutine left blocked).
func TestRunnerKeysMadeAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closed := make(chan struct{})
		p := newKeyPool(closed)
		first, err := p.take()
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(p.ready); n != 0 {
			t.Fatalf("%d keys made while JIT configs were not quiet", n)
		}
		time.Sleep(p.quiet)
		synctest.Wait()
		if n := len(p.ready); n != keyPoolSize {
			t.Fatalf("%d keys ready after a quiet moment, want %d", n, keyPoolSize)
		}
		seen := map[string]bool{first.N.String(): true}
		for range keyPoolSize + 1 { // the last one is made on the spot
			k, err := p.take()
			if err != nil {
				t.Fatal(err)
			}
			if seen[k.N.String()] {
				t.Fatal("a runner key handed out twice")
			}
			seen[k.N.String()] = true
		}
		close(closed)
	})
}
