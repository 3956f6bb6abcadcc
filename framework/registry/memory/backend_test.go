package memory

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
)

// --registry memory started a service that was ready, finding no other
// service and found by none, without a word (report j53d finding 10):
// opening it says what it is.
func TestBackend_OpenWarnsItIsThisProcessOnly(t *testing.T) {
	var out bytes.Buffer
	s := Backend().Bind(flag.NewFlagSet("t", flag.ContinueOnError))
	r, err := s.Open(context.Background(), registry.OpenOptions{Logger: log.NewLogfmtLogger(&out)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := out.String(); !strings.Contains(got, "level=warn") || !strings.Contains(got, "this process's own registry") {
		t.Fatalf("opening the memory registry logged %q, want a warning that it is this process only", got)
	}
	if _, err := s.Open(context.Background(), registry.OpenOptions{}); err != nil { // no logger: discard
		t.Fatal(err)
	}
}
