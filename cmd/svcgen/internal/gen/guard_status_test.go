package gen

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// docs/svcgen.md, Annotations: the status of `//warren:http METHOD /path
// [status]` "is a success status 200–299 other than 204/205 (the response
// is JSON)". The bad-input table checks 404 and 204 only; this checks
// both ends of the range and 205, so a bound moved (a 3xx or 1xx let
// through, whose response a client would not read as the method's
// answer) or the 205 check dropped fails here.
func TestRoute_StatusIsASuccessStatusWithABody(t *testing.T) {
	for _, c := range []struct {
		status string
		want   string // a problem containing this; "" accepted
	}{
		{"199", "want a success status 200…299"},
		{"100", "want a success status 200…299"},
		{"300", "want a success status 200…299"},
		{"302", "want a success status 200…299"},
		{"204", "status 204 allows no body"},
		{"205", "status 205 allows no body"},
		{"2xx", "want a success status 200…299"},
		{"200", ""},
		{"201", ""},
		{"202", ""},
		{"299", ""},
	} {
		t.Run(c.status, func(t *testing.T) {
			methods := "\t//warren:http POST /things " + c.status + "\n\tCreate(ctx context.Context, req GetRequest) (Thing, error)"
			src := strings.Replace(strings.Replace(base, "METHODS", methods, 1), "EXTRA", "", 1)
			out, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
			if c.want == "" {
				if err != nil {
					t.Fatalf("status %s refused: %v", c.status, err)
				}
				enc := "httptransport.EncodeJSONStatus(" + c.status + ")"
				if c.status == "200" {
					enc = "httptransport.EncodeJSON"
				}
				if tr := string(out.Files["transport_gen.go"]); !strings.Contains(tr, enc) {
					t.Fatalf("status %s: transport_gen.go does not answer with %s", c.status, enc)
				}
				return
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("status %s: err = %v, want Problems", c.status, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("status %s: problems\n%v\nwant one containing %q", c.status, err, c.want)
			}
			if !strings.Contains(fmt.Sprint(err), "Create:") {
				t.Errorf("status %s: the problem does not name the method: %v", c.status, err)
			}
		})
	}
}
