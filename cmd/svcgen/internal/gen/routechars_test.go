package gen

import (
	"errors"
	"strings"
	"testing"
)

// TestHTTP_RouteSegmentsWithURLSyntaxAreRefused: a space, '?', '#' or
// '%' in a literal segment of a //warren:http path would be a route the
// client's request never reaches ('?' and '#' end the path, '%' starts an
// escape), though net/http registers it; gen refuses it, naming the
// segment. Mutation audit M6: kills checkPath's character check removed.
func TestHTTP_RouteSegmentsWithURLSyntaxAreRefused(t *testing.T) {
	for _, path := range []string{"/items?all", "/items#top", "/100%off"} {
		src := "package things\n\nimport \"context\"\n\ntype Service interface {\n\t//warren:http GET " + path + "\n\tGet(ctx context.Context, req R) (R, error)\n}\n\ntype R struct{}\n"
		_, err := Load("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
		var probs Problems
		seg := strings.TrimPrefix(path, "/")
		if !errors.As(err, &probs) || !strings.Contains(err.Error(), `services/things/service.go:6: Get: `) ||
			!strings.Contains(err.Error(), `segment "`+seg+`" has a character that must not appear in a route`) {
			t.Errorf("//warren:http GET %s: err = %v; want the segment %q refused at service.go:6", path, err, seg)
		}
	}
}
