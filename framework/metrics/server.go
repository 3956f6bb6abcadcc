package metrics

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/httptransport"
)

// Server counts and times the requests a service answers, over HTTP
// (Middleware) and gRPC (UnaryServerInterceptor).
type Server struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge

	grpcRequests *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec
}

// NewServer registers the server series on r.
func NewServer(r prometheus.Registerer) *Server {
	s := &Server{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http_server", Name: "requests_total",
			Help: "Requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http_server", Name: "request_duration_seconds",
			Help:    "Time from request to the handler's return, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "http_server", Name: "in_flight_requests",
			Help: "Requests being served now.",
		}),
	}
	s.grpcRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "grpc_server", Name: "requests_total",
		Help: "Unary gRPC calls answered, by full method name and status code.",
	}, []string{"method", "code"})
	s.grpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "grpc_server", Name: "request_duration_seconds",
		Help:    "Time from a unary gRPC call reaching the service's handler to its return, by full method name.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method"})
	r.MustRegister(s.requests, s.duration, s.inFlight, s.grpcRequests, s.grpcDuration)
	return s
}

// UnaryServerInterceptor counts and times unary gRPC calls, the twin of
// Middleware (grpcserver.WithUnaryInterceptors; bootstrap wires it). The
// method label is bounded: gRPC dispatches only the methods the server
// registered. Health checks are not counted, as /healthz is not.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if grpctransport.IsHealthMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		start := time.Now()
		defer func() {
			code := codes.OK
			if err != nil {
				code = grpctransport.Status(err).Code()
			}
			if p := recover(); p != nil {
				code = codes.Internal // answered so by Warren's outer interceptor
				defer panic(p)
			}
			s.grpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
			s.grpcRequests.WithLabelValues(info.FullMethod, code.String()).Inc()
		}()
		return handler(ctx, req)
	}
}

// Middleware instruments next, which must route with an
// httptransport.Router (the generated transports do) for the route label;
// requests no route matched are counted under route "unmatched".
func (s *Server) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = httptransport.WithRouteSlot(r)
		s.inFlight.Inc()
		start := time.Now()
		rw := &codeWriter{ResponseWriter: w}
		defer func() {
			s.inFlight.Dec()
			code := rw.status()
			if p := recover(); p != nil {
				// The server's Recover, outside this middleware, answers
				// 500 unless a status is out (http.ErrAbortHandler: the
				// connection is cut, no answer at all); counted as 200,
				// the default, a panic hid from every error rate.
				if rw.code == 0 {
					code = http.StatusInternalServerError
				}
				defer panic(p)
			}
			method, route := splitPattern(r.Method, httptransport.RouteOf(r.Context()))
			s.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
			s.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		}()
		next.ServeHTTP(rw, r)
	})
}

// splitPattern turns "GET /users/{id}" into its method and path. A pattern
// without a method keeps the request's; no pattern is "unmatched". A
// request's method is a label value only when it is a standard one: any
// client can send "BREW", and every such word would be a series forever.
func splitPattern(reqMethod, pattern string) (method, route string) {
	if pattern == "" {
		return knownMethod(reqMethod), httptransport.UnmatchedRoute
	}
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, strings.TrimSpace(p)
	}
	if pattern == httptransport.UnmatchedRoute {
		// Keep the label set small: stray methods are one value too.
		return "other", pattern
	}
	return knownMethod(reqMethod), pattern
}

func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// codeWriter records the status code.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	// An informational status (103 Early Hints) goes out before the
	// answer and is not its status; 101 Switching Protocols is final.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *codeWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection.
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming handlers working.
func (w *codeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack keeps connection-upgrading handlers working.
func (w *codeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("metrics: response writer does not support hijacking")
}
