package devmesh

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
)

// PrintSummary writes the instance table and the demo's curl commands.
func (m *Mesh) PrintSummary(w io.Writer) {
	m.outMu.Lock()
	defer m.outMu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINSTANCE ID\tADDRESS\tZONE\tSTATE\tMETRICS")
	for _, in := range m.Instances() {
		state := "ready"
		if st := m.readyz(context.Background(), client, in); st != http.StatusOK {
			state = fmt.Sprintf("not ready (%d)", st)
		}
		metrics := in.Registered.Metadata[app.MetricsMetadataKey]
		if metrics == "" {
			metrics = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Service, in.Registered.ID, in.Registered.HostPort(), in.Zone, state, metrics)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nregistry: %s — every instance above is registered and ready.\n", m.cfg.Registry)

	u, o := m.Instance("user", 1), m.Instance("order", 1)
	if u == nil || o == nil {
		fmt.Fprintln(w, "\nPress Ctrl-C to stop the mesh.")
		return
	}
	userURL, orderURL := httpURL(u.Registered), httpURL(o.Registered)
	fmt.Fprintf(w, `
Try the demo flow (paste each line into another terminal):

  # 1. create a user (any user instance will do; the answer carries its ID)
  USER_ID=$(curl -s -X POST %[1]s/users -d '{"name":"Ada Lovelace","email":"ada@example.com"}' | tee /dev/stderr | sed -E 's/.*"id":"([^"]+)".*/\1/'); echo

  # 2. place an order: the order service looks the user up through discovery
  curl -s -X POST %[2]s/orders -d "{\"user_id\":\"$USER_ID\",\"items\":[{\"sku\":\"book\",\"quantity\":2,\"price_cents\":1250}]}"; echo

  # 3. list the user's orders (from either order instance)
  curl -s "%[2]s/orders?user_id=$USER_ID"; echo
%[3]s
Press Ctrl-C to stop: services withdraw, drain and deregister, then the registry stops.
`, userURL, orderURL, m.grpcHint(u.Registered))
}

// grpcHint is step 4 of the demo flow when user serves gRPC: the same
// user read over gRPC by cmd/usergrpc, which finds it through this mesh's
// registry (its WARREN_* variables) and calls it with the generated
// client. No grpcurl needed.
func (m *Mesh) grpcHint(u registry.Instance) string {
	if _, ok := u.Endpoint("grpc", "grpcs"); !ok {
		return ""
	}
	return fmt.Sprintf(`
  # 4. the same user over gRPC (the generated client: discovery, balancing, retries)
  %s go run ./cmd/usergrpc get "$USER_ID"
`, strings.Join(m.registryEnv(), " "))
}

// httpURL is the instance's HTTP(S) endpoint, "" when it serves none.
func httpURL(inst registry.Instance) string {
	ep, _ := inst.Endpoint("http", "https")
	return ep
}
