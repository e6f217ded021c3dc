package ghsim

// Webhook payload builders, one per event. emit adds the common fields.

func (s *Server) emitPull(rp *repo, p *pull, action string, sender *user, extra obj) {
	payload := obj{"number": p.Number, "pull_request": s.pullJSON(rp, p)}
	for k, v := range extra {
		payload[k] = v
	}
	s.emit(rp, "pull_request", action, sender, payload)
}

func (s *Server) emitCheckRun(rp *repo, c *checkRun, action string, sender *user) {
	s.emit(rp, "check_run", action, sender, obj{"check_run": s.checkRunJSON(c)})
}

func (s *Server) emitWorkflowRun(ru *run, action string) {
	s.emit(ru.Repo, "workflow_run", action, ru.Actor, obj{
		"workflow":     s.workflowJSON(ru),
		"workflow_run": s.runJSON(ru),
	})
}

func (s *Server) emitWorkflowJob(j *job, action string) {
	s.scaleSetJobEvent(j, action)
	s.emit(j.Run.Repo, "workflow_job", action, j.Run.Actor, obj{
		"workflow_job": s.jobJSON(j),
	})
}
