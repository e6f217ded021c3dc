package status

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/buildfleet/buildfleet/manager/store"
)

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	views, pools, err := s.recent(r)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	older := ""
	if len(views) == s.limit {
		older = olderLink(r.URL, views[len(views)-1].CreatedAt)
	}
	s.render(w, http.StatusOK, "index", map[string]any{
		"Title": "buildfleet", "Refresh": true, "Requests": views, "Pools": pools,
		"RunnersKnown": s.runners != nil, "Older": older, "Release": s.releaseView(),
	})
}

// recent is what the front page and its JSON twin show: the newest
// requests and the pools with their runner counts.
func (s *server) recent(r *http.Request) ([]requestView, []poolView, error) {
	var reqs []store.Request
	var err error
	if b := before(r.URL); !b.IsZero() {
		reqs, err = s.hist.RequestsPage(r.Context(), b, s.limit, "", false)
	} else {
		reqs, err = s.st.ListRequests(r.Context(), s.limit)
	}
	if err != nil {
		return nil, nil, err
	}
	views := make([]requestView, 0, len(reqs))
	for _, q := range reqs {
		views = append(views, s.requestView(q))
	}
	pools, err := s.poolViews(r.Context(), false)
	if err != nil {
		return nil, nil, err
	}
	return views, pools, nil
}

func (s *server) request(w http.ResponseWriter, r *http.Request) {
	v, err := s.lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "request", map[string]any{
		"Title": "request " + v.ID, "Refresh": true, "R": v, "RunnersKnown": s.runners != nil,
	})
}

func (s *server) poolsPage(w http.ResponseWriter, r *http.Request) {
	pools, err := s.poolViews(r.Context(), true)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "pools", map[string]any{
		"Title": "pools", "Refresh": true, "Pools": pools, "RunnersKnown": s.runners != nil,
		"FleetKnown": s.fleet != nil,
	})
}

func (s *server) apiRequests(w http.ResponseWriter, r *http.Request) {
	views, pools, err := s.recent(r)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": views, "pools": pools})
}

func (s *server) apiRequest(w http.ResponseWriter, r *http.Request) {
	v, err := s.lookup(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) apiPools(w http.ResponseWriter, r *http.Request) {
	pools, err := s.poolViews(r.Context(), true)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pools": pools})
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func (s *server) render(w http.ResponseWriter, code int, page string, data map[string]any) {
	var buf bytes.Buffer
	if err := s.pages[page].Execute(&buf, data); err != nil {
		s.log.Error("rendering status page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
