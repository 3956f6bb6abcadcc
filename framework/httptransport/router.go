package httptransport

import (
	"net/http"
	"net/http/httptest"
)

// Router is a net/http ServeMux (method and path patterns such as
// "GET /users/{id}") whose unknown-route and wrong-method answers are JSON
// error bodies like every other error, with the Allow header kept on 405.
// It records the matched pattern for middleware outside it (WithRouteSlot).
type Router struct {
	mux *http.ServeMux
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{mux: http.NewServeMux()} }

// Handle registers h for pattern ("POST /users", "GET /users/{id}").
func (rt *Router) Handle(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := rt.mux.Handler(r)
	if pattern != "" {
		recordRoute(r.Context(), pattern)
		rt.mux.ServeHTTP(w, r) // sets path values, which mux.Handler does not
		return
	}
	recordRoute(r.Context(), UnmatchedRoute)
	// No pattern: the mux's own 404, 405 or redirect. Let it decide, then
	// speak JSON for the errors.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	switch rec.Code {
	case http.StatusNotFound:
		writeJSONError(w, http.StatusNotFound, ErrorBody{Error: "no route for " + r.Method + " " + r.URL.Path, Code: "route_not_found"})
	case http.StatusMethodNotAllowed:
		if allow := rec.Header().Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeJSONError(w, http.StatusMethodNotAllowed, ErrorBody{Error: "method " + r.Method + " not allowed on " + r.URL.Path, Code: "method_not_allowed"})
	default:
		// The mux's path cleaning ("//", "..", a missing trailing slash)
		// redirects with a small HTML body; keep the status and Location
		// (a client that follows redirects still gets there) and speak JSON
		// like every other answer that is not the service's own.
		loc := rec.Header().Get("Location")
		if rec.Code >= 300 && rec.Code < 400 && loc != "" {
			w.Header().Set("Location", loc)
			writeJSONError(w, rec.Code, ErrorBody{Error: "the canonical path of " + r.URL.Path + " is " + loc, Code: "redirect"})
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}
