package ghsim

import (
	"net/http"
	"strconv"
)

func (s *Server) deliveryItemJSON(h *hook, d *delivery) obj {
	return obj{
		"id": d.ID, "guid": d.GUID, "delivered_at": ts(d.DeliveredAt), "redelivery": d.Redelivery,
		"duration": d.Duration.Seconds(), "status": d.Status, "status_code": d.StatusCode,
		"event": d.Event, "action": nullStr(d.Action), "installation_id": nil,
		"repository_id": h.Repo.ID, "throttled_at": nil,
	}
}

func (s *Server) lookupHook(w http.ResponseWriter, r *http.Request) (*hook, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("hook"), 10, 64)
	h := s.st.hooks[id]
	if h == nil || h.Repo != rp {
		notFound(w)
		return nil, false
	}
	return h, true
}

func (s *Server) lookupDelivery(w http.ResponseWriter, r *http.Request) (*hook, *delivery, bool) {
	h, ok := s.lookupHook(w, r)
	if !ok {
		return nil, nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	for _, d := range h.Deliv {
		if d.ID == id {
			return h, d, true
		}
	}
	notFound(w)
	return nil, nil, false
}

// handleListDeliveries lists a hook's deliveries, newest first.
func (s *Server) handleListDeliveries(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.lookupHook(w, r)
	if !ok {
		return
	}
	out := []any{}
	for i := len(h.Deliv) - 1; i >= 0; i-- {
		out = append(out, s.deliveryItemJSON(h, h.Deliv[i]))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

func (s *Server) handleGetDelivery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, d, ok := s.lookupDelivery(w, r)
	if !ok {
		return
	}
	j := s.deliveryItemJSON(h, d)
	var payload any = string(d.Body)
	hdr := obj{}
	for k, v := range d.Headers {
		hdr[k] = v
	}
	rh := obj{}
	for k, v := range d.RespHeaders {
		rh[k] = v
	}
	j["url"] = h.URL
	j["request"] = obj{"headers": hdr, "payload": jsonRaw(d.Body, payload)}
	j["response"] = obj{"headers": rh, "payload": d.RespBody}
	writeJSON(w, http.StatusOK, j)
}

// handleRedeliver queues the delivery again with the same GUID, as GitHub's
// redelivery does, and answers 202.
func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, d, ok := s.lookupDelivery(w, r)
	if !ok {
		return
	}
	nd := &delivery{ID: s.st.id(), GUID: d.GUID, Event: d.Event, Action: d.Action, Body: d.Body, Redelivery: true}
	h.q.push(nd, false)
	writeJSON(w, http.StatusAccepted, obj{})
}
