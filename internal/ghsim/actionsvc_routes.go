package ghsim

import (
	"net/http"
	"strings"
)

// ghsim's Actions service: the protocol GitHub's runner and
// github-act-runner speak once they hold a JIT config, under /_services/
// (GitHub serves it from pipelines.actions.githubusercontent.com and
// vstoken.actions.githubusercontent.com). It is the "v1" flow, service
// locations from connectionData and the distributedtask API; GitHub moved
// github.com runners to a broker and run service in 2024 (UseV2Flow in
// .runner), which ghsim does not speak. It is not part of the REST API:
// calls are not recorded in Calls, not rate limited, and only faults with
// Service set act on it. (The scale-set API, scaleset*.go, is separate.)

// serviceDefs are the service locations a runner looks up by id
// (github-act-runner protocol/connection.go names the ids it uses).
var serviceDefs = []struct{ id, resource, path string }{
	{"134e239e-2df3-4794-a6f6-24f1f19ec8dc", "sessions", "_apis/distributedtask/pools/{poolId}/sessions/{sessionId}"},
	{"c3a054f6-7a8a-49c0-944e-3a8e5d7adfd7", "messages", "_apis/distributedtask/pools/{poolId}/messages/{messageId}"},
	{"fc825784-c92a-4299-9221-998a02d1b54f", "jobrequests", "_apis/distributedtask/pools/{poolId}/jobrequests/{requestId}"},
	{"e298ef32-5878-4cab-993c-043836571f42", "agents", "_apis/distributedtask/pools/{poolId}/agents/{agentId}"},
	{"a8c47e17-4d56-4a56-92bb-de7ea7dc65be", "pools", "_apis/distributedtask/pools/{poolId}"},
	{"8893bc5b-35b2-4be7-83cb-99e683551db4", "records", "{scopeIdentifier}/_apis/distributedtask/{hubName}/plans/{planId}/timelines/{timelineId}/records"},
	{"858983e4-19bd-4c5e-864c-507b59b58b12", "feed", "{scopeIdentifier}/_apis/distributedtask/{hubName}/plans/{planId}/timelines/{timelineId}/records/{recordId}/feed"},
	{"46f5667d-263a-4684-91b1-dff7fdcf64e2", "logs", "{scopeIdentifier}/_apis/distributedtask/{hubName}/plans/{planId}/logs/{logId}"},
	{"557624af-b29e-4c20-8ab0-0399d2204f3f", "events", "{scopeIdentifier}/_apis/distributedtask/{hubName}/plans/{planId}/events"},
	{"27d7f831-88c1-4719-8ca1-6a061dad90eb", "actiondownloadinfo", "{scopeIdentifier}/_apis/distributedtask/{hubName}/plans/{planId}/actiondownloadinfo"},
}

// actionServiceRoutes registers the Actions service on s.mux.
func (s *Server) actionServiceRoutes() {
	m := s.mux
	const pools = serviceRoot + "_apis/distributedtask/pools/{pool}"
	const plan = serviceRoot + "{scope}/_apis/distributedtask/{hub}/plans/{plan}"
	m.HandleFunc("POST "+tokenRoot+"{client}", s.handleOAuthToken)
	m.HandleFunc("GET "+serviceRoot+"_apis/connectionData", s.handleConnectionData)
	m.HandleFunc("POST "+pools+"/sessions", s.handleRunnerCreateSession)
	m.HandleFunc("DELETE "+pools+"/sessions/{session}", s.handleRunnerDeleteSession)
	m.HandleFunc("GET "+pools+"/messages", s.handleRunnerGetMessage)
	m.HandleFunc("DELETE "+pools+"/messages/{message}", s.handleRunnerDeleteMessage)
	m.HandleFunc("PATCH "+pools+"/jobrequests/{request}", s.handleRenewJob)
	m.HandleFunc("DELETE "+pools+"/agents/{agent}", s.handleRunnerDeleteAgent)
	m.HandleFunc("PATCH "+plan+"/timelines/{timeline}/records", s.handleTimelineRecords)
	m.HandleFunc("POST "+plan+"/timelines/{timeline}/records/{record}/feed", s.handleFeed)
	m.HandleFunc("POST "+plan+"/logs", s.handleCreateLog)
	m.HandleFunc("POST "+plan+"/logs/{log}", s.handleUploadLog)
	m.HandleFunc("POST "+plan+"/events", s.handlePlanEvent)
}

// handleConnectionData answers the service locations; like GitHub it
// wants a token, and a runner without one gets 401 and authorizes.
func (s *Server) handleConnectionData(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.svcAuth(w, r); !ok {
		return
	}
	defs := []any{}
	for _, d := range serviceDefs {
		defs = append(defs, obj{
			"serviceType": "distributedtask", "identifier": d.id, "displayName": d.resource,
			"relativeToSetting": "fullyQualified", "relativePath": d.path, "serviceOwner": "00000000-0000-0000-0000-000000000000",
			"resourceVersion": 1, "minVersion": "1.0", "maxVersion": "7.0",
		})
	}
	writeJSON(w, http.StatusOK, obj{
		"instanceId": "00000000-0000-0000-0000-000000000001", "deploymentType": "hosted",
		"locationServiceData": obj{"serviceDefinitions": defs},
	})
}

// isRunnerService tells the runners' service paths from the rest.
func isRunnerService(p string) bool {
	return strings.HasPrefix(p, serviceRoot) || strings.HasPrefix(p, tokenRoot)
}

// serveService serves the Actions service with its own faults.
func (s *Server) serveService(w http.ResponseWriter, r *http.Request) {
	if f := s.faults.matchService(r.Method, r.URL.Path); f != nil {
		switch f.Kind {
		case FaultTokenExpiry:
			s.mu.Lock()
			delete(s.svc().tokens, bearerToken(r))
			s.mu.Unlock()
			writeSvcError(w, http.StatusUnauthorized, "VssUnauthorizedException", "The access token has expired.")
			return
		case FaultLatency:
			f.apply(w, r, rateState{}, s.opts.Now())
		case FaultServerError:
			writeSvcError(w, f.Status, "VssServiceException", http.StatusText(f.Status))
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	writeSvcError(w, http.StatusNotFound, "VssResourceNotFoundException", "No service at "+r.URL.Path+".")
}
