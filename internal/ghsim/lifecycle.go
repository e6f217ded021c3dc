package ghsim

// Run and job state changes. Each emits the webhooks GitHub emits, in
// GitHub's order. Callers hold s.mu.
//
//	run:  queued ──first job starts──▶ in_progress ──all jobs done──▶ completed
//	job:  queued ──runner takes it──▶ in_progress ──runner reports──▶ completed
//	      queued ──cancel──▶ completed/cancelled

// startRun emits workflow_run.requested and queues the jobs without needs.
func (s *Server) startRun(ru *run) error {
	ru.pending = append([]*wfJob(nil), ru.WF.Jobs...)
	ru.results = map[string]string{}
	s.st.runs[ru.ID] = ru
	s.emitWorkflowRun(ru, "requested")
	return s.queueReady(ru)
}

// queueReady creates the jobs whose needs are all done: queued when every
// need succeeded, skipped otherwise.
func (s *Server) queueReady(ru *run) error {
	var still []*wfJob
	for _, wj := range ru.pending {
		ready, ok := true, true
		for _, n := range wj.Needs {
			res, done := ru.results[n]
			ready = ready && done
			ok = ok && res == "success"
		}
		if !ready {
			still = append(still, wj)
			continue
		}
		jobs, err := s.instantiate(ru, wj)
		if err != nil {
			ru.pending = still
			return err
		}
		for _, j := range jobs {
			ru.Jobs = append(ru.Jobs, j)
			s.st.jobs[j.ID] = j
			j.Simulate = s.simulationFor(j)
			if !ok || ru.cancelled {
				j.Status, j.Conclusion, j.StartedAt, j.CompletedAt = "completed", "skipped", s.now(), s.now()
				s.emitWorkflowJob(j, "completed")
				continue
			}
			s.emitWorkflowJob(j, "queued")
		}
		if !ok || ru.cancelled {
			s.recordResult(ru, wj.Key)
		}
	}
	ru.pending = still
	s.cond.Broadcast()
	return nil
}

func (s *Server) simulationFor(j *job) *simulation {
	d, c := j.Env["GHSIM_DURATION"], j.Env["GHSIM_CONCLUSION"]
	if d == "" && c == "" {
		if s.opts.JobDuration == 0 && s.opts.JobConclusion == "" {
			return nil
		}
		d, c = s.opts.JobDuration.String(), s.opts.JobConclusion
	}
	if c == "" {
		c = "success"
	}
	if d == "" {
		d = "0s"
	}
	return &simulation{Duration: d, Conclusion: c}
}

// startJob hands j to runner rn.
func (s *Server) startJob(j *job, rn *runner) {
	j.Status, j.StartedAt, j.RunnerID, j.RunnerName = "in_progress", s.now(), rn.ID, rn.Name
	rn.Busy, rn.JobID = true, j.ID
	if err := s.buildSteps(j, rn); err != nil {
		// GitHub fails such a job at run time; so does ghsim, via the runner.
		j.Log.WriteString("##[error]" + err.Error() + "\n")
		j.Simulate = &simulation{Duration: "0s", Conclusion: "failure"}
	}
	ru := j.Run
	s.emitWorkflowJob(j, "in_progress")
	if ru.Status == "queued" {
		ru.Status, ru.StartedAt, ru.UpdatedAt = "in_progress", s.now(), s.now()
		s.emitWorkflowRun(ru, "in_progress")
	}
}

// completeJob records j's conclusion and moves the run on.
func (s *Server) completeJob(j *job, conclusion string) {
	if j.Status == "completed" {
		return
	}
	j.Status, j.Conclusion, j.CompletedAt = "completed", conclusion, s.now()
	for _, st := range j.Steps {
		if st.Status != "completed" {
			st.Status, st.Conclusion = "completed", "skipped"
			if conclusion == "cancelled" {
				st.Conclusion = "cancelled"
			}
		}
	}
	s.emitWorkflowJob(j, "completed")
	s.recordResult(j.Run, j.Key)
	if err := s.queueReady(j.Run); err != nil {
		s.log.Warn("queueing dependent jobs", "run", j.Run.ID, "err", err)
	}
	s.finishRunIfDone(j.Run)
}

// recordResult stores a workflow job's result once all its matrix jobs are
// done: success only if every one succeeded.
func (s *Server) recordResult(ru *run, key string) {
	res := "success"
	for _, j := range ru.Jobs {
		if j.Key != key {
			continue
		}
		if j.Status != "completed" {
			return
		}
		if j.Conclusion != "success" {
			res = j.Conclusion
		}
	}
	ru.results[key] = res
}

func (s *Server) finishRunIfDone(ru *run) {
	if ru.Status == "completed" || len(ru.pending) > 0 {
		return
	}
	conclusion := "success"
	for _, j := range ru.Jobs {
		if j.Status != "completed" {
			return
		}
		switch j.Conclusion {
		case "failure", "timed_out":
			conclusion = "failure"
		case "cancelled":
			if conclusion != "failure" {
				conclusion = "cancelled"
			}
		}
	}
	if ru.cancelled {
		conclusion = "cancelled"
	}
	ru.Status, ru.Conclusion, ru.UpdatedAt = "completed", conclusion, s.now()
	if ru.StartedAt.IsZero() {
		ru.StartedAt = s.now()
	}
	s.emitWorkflowRun(ru, "completed")
	s.cond.Broadcast()
}

// cancelRun cancels queued jobs at once and asks runners of running jobs to
// stop; jobs waiting for needs are dropped.
func (s *Server) cancelRun(ru *run) {
	ru.cancelled = true
	ru.pending = nil
	for _, j := range ru.Jobs {
		switch j.Status {
		case "queued":
			j.Status, j.Conclusion, j.CompletedAt = "completed", "cancelled", s.now()
			s.emitWorkflowJob(j, "completed")
		case "in_progress":
			j.CancelRequested = true
		}
	}
	s.finishRunIfDone(ru)
	s.cond.Broadcast()
}
