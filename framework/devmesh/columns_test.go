package devmesh

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// The summary's endpoint columns: plaintext as host:port, TLS with its
// scheme so it is not taken for plaintext, other schemes apart, "-" for
// none. (The columns as printed by a running mesh:
// TestPrintSummary_ShowsEveryRegisteredEndpoint.)
func TestColumnsOf_TLSKeepsItsSchemeAndOtherSchemesGoApart(t *testing.T) {
	cases := []struct {
		name      string
		endpoints []string
		want      endpointColumns
	}{
		{"http only", []string{"http://127.0.0.1:1"}, endpointColumns{"127.0.0.1:1", "-", "-"}},
		{"both", []string{"http://127.0.0.1:1", "grpc://127.0.0.1:2"}, endpointColumns{"127.0.0.1:1", "127.0.0.1:2", "-"}},
		{"grpc only", []string{"grpc://[::1]:2"}, endpointColumns{"-", "[::1]:2", "-"}},
		{"tls", []string{"https://h:1", "grpcs://h:2"}, endpointColumns{"https://h:1", "grpcs://h:2", "-"}},
		{"other scheme", []string{"http://h:1", "thrift://h:3"}, endpointColumns{"h:1", "-", "thrift://h:3"}},
		{"none", nil, endpointColumns{"-", "-", "-"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := columnsOf(registry.Instance{Endpoints: c.endpoints}); got != c.want {
				t.Errorf("columnsOf(%v) = %+v, want %+v", c.endpoints, got, c.want)
			}
		})
	}
}
