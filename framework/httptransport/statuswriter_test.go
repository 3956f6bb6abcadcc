package httptransport

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// A handler that sends an informational answer (103 Early Hints) and then
// panics still answers 500: 1xx is not the response's status, so Recover
// must not take the header as written — it did, and net/http then sent
// 200 with an empty body, which a caller reads as a zero response.
func TestRecover_PanicAfterEarlyHintsIs500(t *testing.T) {
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		panic("boom")
	}), log.NewNopLogger(), 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cl := &http.Client{Timeout: 20 * time.Second}
	defer cl.CloseIdleConnections()
	resp, err := cl.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d body %q; want 500", resp.StatusCode, b)
	}
}
