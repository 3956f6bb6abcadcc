package httpserver

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/shed"
)

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func listen(t *testing.T, opts ...Option) string {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s, err := New(ok, append([]Option{WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("n"))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return "http://" + addr.String()
}

// A full instance answers the service's routes 503 overloaded, but its
// health, readiness and exempt routes as usual.
func TestShedding_FullServerShedsServiceRoutesNeverHealth(t *testing.T) {
	l, err := shed.New(shed.WithQueueProbe(nil), shed.WithLimits(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	held, why := l.Acquire() // pinned busy: its one slot is taken
	if why != shed.Admitted {
		t.Fatal(why)
	}
	defer held.Release()
	url := listen(t, WithShedding(l, shed.WithExempt("GET /cheap")))
	for path, want := range map[string]int{
		"/work": http.StatusServiceUnavailable, "/cheap": http.StatusOK,
		"/healthz": http.StatusOK, "/readyz": http.StatusOK,
	} {
		if got := status(t, url+path); got != want {
			t.Errorf("GET %s on a full server: %d, want %d", path, got, want)
		}
	}
	if n := l.Stats().ShedLimit; n != 1 {
		t.Errorf("shed %d requests, want 1 (GET /work)", n)
	}
}

func TestShedding_OnByDefaultAndOff(t *testing.T) {
	s, err := New(http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	if s.Shedder() == nil {
		t.Fatal("a server without options has no shedder; shedding must be on by default")
	}
	s, err = New(http.NotFoundHandler(), WithoutShedding())
	if err != nil {
		t.Fatal(err)
	}
	if s.Shedder() != nil {
		t.Fatal("WithoutShedding left a shedder")
	}
	if _, err := New(http.NotFoundHandler(), WithShedding(nil, shed.WithExempt("GET /{"))); err == nil {
		t.Fatal("a bad exempt pattern was accepted")
	}
}

// The server reports its connections to the shedder, so that it can count
// the requests waiting on them (the waiting signal): a connection nobody
// has sent a request on yet is one between requests.
func TestShedding_ServerReportsItsConnectionsToTheShedder(t *testing.T) {
	l, err := shed.New(shed.WithWaitingTarget(16, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	url := listen(t, WithShedding(l))
	idle, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// The server accepts in order: the idle connection is known before
	// this request's, whose reading of waiting requests counts it.
	if got := status(t, url+"/work"); got != http.StatusOK {
		t.Fatalf("GET /work: %d", got)
	}
	if st := l.Stats(); st.Conns < 1 {
		t.Fatalf("stats %+v: the shedder saw none of the server's connections", st)
	}
}
