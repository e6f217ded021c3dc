package ghsim

import (
	"fmt"
	"time"
)

// A runner that stops talking to GitHub (killed, host gone, network cut)
// does not say so. GitHub notices the silence: the runner shows offline,
// and the job it ran fails ("lost communication with the server") once the
// runner has not renewed its hold on the job for a while. Without this, a
// killed runner's job stays in_progress and its registration busy for
// ever, which real GitHub never does.
//
// A runner is in contact while it has a long poll open (acquire, or the
// Actions service's message poll) and for RunnerLostAfter after each call.

// defaultRunnerLostAfter is how long GitHub waits for a silent runner
// (the Actions service's job lock lasts 10 minutes; see handleRenewJob).
const defaultRunnerLostAfter = 10 * time.Minute

// lostMessage is the annotation GitHub puts on a job whose runner went
// silent.
const lostMessage = "The self-hosted runner: %s lost communication with the server. Verify the machine is running and has a healthy network connection."

// seen records a call of the runner. Callers hold s.mu.
func (s *Server) seen(rn *runner) {
	if rn == nil {
		return
	}
	rn.lastSeen = s.opts.Now()
	if rn.session != "" {
		rn.Status = "online"
	}
}

// polling marks a long poll of rn open until the returned func runs.
// Callers hold s.mu, and so does the returned func's caller.
func (s *Server) polling(rn *runner) (done func()) {
	rn.polls++
	s.seen(rn)
	return func() {
		rn.polls--
		s.seen(rn)
	}
}

// watchSilence fails the jobs of runners silent for longer than
// RunnerLostAfter and shows silent runners offline, until Close.
func (s *Server) watchSilence() {
	every := min(s.opts.RunnerLostAfter/4, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		s.mu.Lock()
		s.checkSilence()
		s.mu.Unlock()
	}
}

// checkSilence applies the silence rule once. Callers hold s.mu.
func (s *Server) checkSilence() {
	now := s.opts.Now()
	for _, rn := range s.st.runner {
		if rn.session == "" || rn.polls > 0 || now.Sub(rn.lastSeen) < s.opts.RunnerLostAfter {
			continue
		}
		rn.Status = "offline"
		if !rn.Busy {
			continue
		}
		if j := s.st.jobs[rn.JobID]; j != nil && j.Status == "in_progress" && j.RunnerID == rn.ID {
			s.log.Info("runner went silent: failing its job", "runner", rn.Name, "job", j.ID)
			j.Log.WriteString("##[error]" + fmt.Sprintf(lostMessage, rn.Name) + "\n")
			s.completeJob(j, "failure")
		}
		rn.Busy, rn.JobID, rn.session = false, 0, ""
		s.cond.Broadcast()
	}
}
