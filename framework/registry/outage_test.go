package registry

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// An outage is one warning, a reminder once the reminder interval has
// passed, and one line when reads work again; retries in between are
// debug lines. Reads that never failed log nothing.
func TestOutageLog_WarnsOnceRemindsAndSaysWhenItIsOver(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	o := NewOutageLog(log.NewLogfmtLogger(&buf), "etcd")
	o.now = func() time.Time { return now }
	lines := func(level string) int { return strings.Count(buf.String(), "level="+level+" ") }

	o.Recovered("instances", 3)
	if buf.Len() != 0 {
		t.Fatalf("a read that follows no failure logged: %s", buf.String())
	}
	down := errors.New("connection refused")
	for range 5 {
		o.Failed(down, "instances", 3)
		now = now.Add(5 * time.Second)
	}
	if lines("warn") != 1 || lines("debug") != 4 {
		t.Fatalf("5 failures within %v: %d warnings, %d debug lines; want 1 and 4:\n%s", o.every, lines("warn"), lines("debug"), buf.String())
	}
	if !o.Failing() {
		t.Fatal("Failing() false after failures")
	}
	now = now.Add(o.every)
	o.Failed(down, "instances", 3)
	if lines("warn") != 2 || !strings.Contains(buf.String(), `msg="still cannot read etcd; keeping last good set" for=1m25s failures=6`) {
		t.Fatalf("no reminder after %v:\n%s", o.every, buf.String())
	}
	o.Recovered("instances", 2)
	o.Recovered("instances", 2)
	if lines("info") != 1 || !strings.Contains(buf.String(), `msg="etcd readable again" after=1m25s failures=6 instances=2`) {
		t.Fatalf("recovery not logged once with its figures:\n%s", buf.String())
	}
	if o.Failing() {
		t.Fatal("Failing() true after a good read")
	}
	// A new outage starts over: its first failure is a warning again.
	o.Failed(down)
	if lines("warn") != 3 || !strings.HasSuffix(buf.String(), "msg=\"cannot read etcd; keeping last good set\" err=\"connection refused\"\n") {
		t.Fatalf("a second outage did not warn from its first failure:\n%s", buf.String())
	}
}

// Before any read succeeded there is no last good set: the warning says
// nothing was read, and says "keeping last good set" only after a read.
func TestOutageLog_NothingReadYetIsNotALastGoodSet(t *testing.T) {
	var buf bytes.Buffer
	o := NewOutageLog(log.NewLogfmtLogger(&buf), "etcd")
	down := errors.New("connection refused")
	o.Failed(down, "instances", 0)
	if got := buf.String(); !strings.Contains(got, `msg="cannot read etcd; nothing read yet`) || strings.Contains(got, "last good set") {
		t.Fatalf("first read failed, logged: %s", got)
	}
	o.Recovered("instances", 2)
	buf.Reset()
	o.Failed(down, "instances", 2)
	if got := buf.String(); !strings.Contains(got, `msg="cannot read etcd; keeping last good set"`) {
		t.Fatalf("failure after a good read logged: %s", got)
	}
}
