package client

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// observability.md, Logs: msg="call failed" is a debug line (seen with
// --log-level debug): a service at the default info level does not write
// one per failed call. The line test read it through an unfiltered
// logger, so an info line passed it.
func TestMethod_FailedCallLineIsDebugOnly(t *testing.T) {
	b := startStatusBackend(t, http.StatusNotFound)
	for _, tc := range []struct {
		allow    level.Option
		wantLine bool
	}{{level.AllowInfo(), false}, {level.AllowDebug(), true}} {
		logs := &syncbuf.Buffer{}
		c := newClient(t, newRegistry(t, b.inst), WithLogger(level.NewFilter(log.NewLogfmtLogger(logs), tc.allow)))
		if _, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/x", echoReq{}, Method("Get")); err == nil {
			t.Fatal("a 404 call succeeded")
		}
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `msg="call failed"`) {
				line = l
			}
		}
		switch {
		case tc.wantLine && !strings.HasPrefix(line, "level=debug "):
			t.Errorf("at debug level: call-failed line %q; want one at level=debug\n%s", line, logs)
		case !tc.wantLine && line != "":
			t.Errorf("at info level: call-failed line %q written; want none", line)
		}
	}
}
