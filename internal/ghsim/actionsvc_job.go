package ghsim

import (
	"sort"
	"strconv"
	"time"
)

// The job message is what GitHub sends a runner for one job
// (AgentJobRequestMessage: github-act-runner protocol/misc.go, actions/runner
// src/Sdk/DTPipelines/Pipelines/AgentJobRequestMessage.cs). ghsim sends the
// steps as it already evaluated them (a run: step's script, env and if: are
// resolved, so each step is a literal "script" step with the condition
// success()); GitHub instead sends expression tokens the runner evaluates.
// A uses: step becomes a script that says it was skipped: ghsim has no
// action downloads.

// jobRequest is one job handed to one runner through the Actions service.
type jobRequest struct {
	id          int64
	job         *job
	runnerID    int64
	planID      string
	timelineID  string
	jobGUID     string // the job's timeline record id
	token       string // the job's access token (SystemVssConnection)
	lockedUntil time.Time
	renewals    int
	cancelSent  bool
	finished    bool
	stepIDs     map[string]int // timeline record id of a step -> step number
	records     map[string]*timelineRecord
	logs        map[int][]byte
	jobLogID    int
	lastFeed    string
}

// newJobRequest records that rn takes j. Callers hold s.mu.
func (s *Server) newJobRequest(j *job, rn *runner) *jobRequest {
	req := &jobRequest{
		id: s.st.id(), job: j, runnerID: rn.ID, planID: guid(), timelineID: guid(), jobGUID: guid(),
		token: randomHex(24), lockedUntil: s.now().Add(10 * time.Minute),
		stepIDs: map[string]int{}, records: map[string]*timelineRecord{}, logs: map[int][]byte{},
	}
	for _, st := range j.Steps {
		req.stepIDs[guid()] = st.Number
	}
	// The job token lasts as long as the job may (GitHub: the job's timeout).
	ttl := 6 * time.Hour
	if j.TimeoutMinutes > 0 {
		ttl = time.Duration(j.TimeoutMinutes)*time.Minute + time.Hour
	}
	s.svc().tokens[req.token] = &svcToken{runnerID: rn.ID, jobID: j.ID, expires: s.opts.Now().Add(ttl)}
	s.svc().requests[req.id] = req
	s.svc().plans[req.planID] = req
	return req
}

func (s *Server) jobRequestJSON(req *jobRequest) obj {
	return obj{
		"requestId": req.id, "lockedUntil": req.lockedUntil.Format(time.RFC3339Nano), "planId": req.planID,
		"jobId": req.jobGUID, "jobName": req.job.Key, "reservedAgent": obj{"id": req.runnerID}, "result": nil,
	}
}

// jobMessage builds the PipelineAgentJobRequest body. Callers hold s.mu.
func (s *Server) runnerJobMessage(req *jobRequest) obj {
	j := req.job
	byNumber := map[int]string{}
	for id, n := range req.stepIDs {
		byNumber[n] = id
	}
	steps := []any{}
	for _, st := range j.Steps {
		script, shell := st.Run, st.Shell
		if st.Uses != "" {
			script, shell = "echo 'ghsim: skipping uses: "+st.Uses+" (no action downloads)'", ""
		}
		inputs := []any{obj{"key": "script", "value": script}}
		if shell != "" {
			inputs = append(inputs, obj{"key": "shell", "value": shell})
		}
		step := obj{
			"id": byNumber[st.Number], "type": "action", "reference": obj{"type": "script"},
			"displayNameToken": st.Name, "contextName": "__run_" + strconv.Itoa(st.Number),
			"inputs": obj{"type": 2, "map": inputs}, "condition": "success()",
		}
		if len(st.Env) > 0 {
			step["environment"] = mappingToken(st.Env)
		}
		steps = append(steps, step)
	}
	api := s.base
	github := map[string]any{}
	if g, ok := j.ctx["github"].(map[string]any); ok {
		for k, v := range g {
			github[k] = v
		}
	}
	github["graphql_url"] = api + "/graphql"
	github["job"] = j.Key
	github["workspace"] = ""
	ctxData := obj{"github": contextData(github)}
	for _, k := range []string{"inputs", "matrix", "strategy", "vars", "needs"} {
		if v, ok := j.ctx[k]; ok && v != nil {
			ctxData[k] = contextData(v)
		}
	}
	return obj{
		"messageType": "PipelineAgentJobRequest",
		"plan":        obj{"scopeIdentifier": guid(), "planId": req.planID, "planType": "actions", "version": 1},
		"timeline":    obj{"id": req.timelineID},
		"jobId":       req.jobGUID, "jobDisplayName": j.Name, "jobName": j.Key, "requestId": req.id,
		"lockedUntil": req.lockedUntil.Format(time.RFC3339Nano),
		"resources": obj{"endpoints": []any{obj{
			"name": "SystemVssConnection", "url": s.base + serviceRoot, "isShared": false, "isReady": true,
			"authorization": obj{"scheme": "OAuth", "parameters": obj{"AccessToken": req.token}},
			"data":          obj{"ServerId": guid(), "ServerName": "ghsim"},
		}}},
		"contextData":          ctxData,
		"workspace":            obj{},
		"mask":                 []any{obj{"type": "regex", "value": req.token}},
		"environmentVariables": []any{mappingToken(j.Env)},
		"defaults":             []any{},
		"variables": obj{
			"system.github.job":      obj{"value": j.Key},
			"system.github.token":    obj{"value": "ghs_" + randomHex(18), "isSecret": true},
			"system.runnerGroupName": obj{"value": "Default"},
		},
		"steps":     steps,
		"fileTable": []any{j.Run.WF.Path},
	}
}

// mappingToken is a template token of type 2 (mapping) of literal strings.
func mappingToken(m map[string]string) obj {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := []any{}
	for _, k := range keys {
		entries = append(entries, obj{"key": k, "value": m[k]})
	}
	return obj{"type": 2, "map": entries}
}

// contextData encodes a value as pipeline context data: strings, numbers
// and booleans as themselves, arrays {"t":1,"a":[...]}, dictionaries
// {"t":2,"d":[{"k":..,"v":..}]}.
func contextData(v any) any {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := []any{}
		for _, k := range keys {
			if v[k] == nil {
				continue
			}
			d = append(d, obj{"k": k, "v": contextData(v[k])})
		}
		return obj{"t": 2, "d": d}
	case []any:
		a := []any{}
		for _, e := range v {
			a = append(a, contextData(e))
		}
		return obj{"t": 1, "a": a}
	case string, bool, float64:
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case nil:
		return ""
	}
	return toStr(v)
}
