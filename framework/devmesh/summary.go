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
// The table shows every endpoint an instance registered, as discovery
// lists it (what callers see): HTTP and gRPC each in a column of their
// own, "-" when it serves none, so the gRPC address a user needs for
// grpcurl or a client is there beside the HTTP one.
func (m *Mesh) PrintSummary(w io.Writer) {
	m.outMu.Lock()
	defer m.outMu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	fmt.Fprintln(w)
	insts := m.Instances()
	cols := make([]endpointColumns, len(insts))
	other := false // a column for other schemes only when one is used
	for i, in := range insts {
		cols[i] = columnsOf(in.Registered)
		other = other || cols[i].other != "-"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SERVICE\tINSTANCE\tHTTP\tGRPC\t"
	if other {
		header += "OTHER\t"
	}
	fmt.Fprintln(tw, header+"ZONE\tSTATE\tMETRICS")
	for i, in := range insts {
		state := "ready"
		if ok, why := m.ready(context.Background(), client, in); !ok {
			state = "not ready (" + why + ")"
		}
		metrics := in.Registered.Metadata[app.MetricsMetadataKey]
		if metrics == "" {
			metrics = "-"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t", in.Service, in.Registered.ID, cols[i].http, cols[i].grpc)
		if other {
			row += cols[i].other + "\t"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", row, in.Zone, state, metrics)
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

// endpointColumns are an instance's endpoints as the summary shows them.
type endpointColumns struct{ http, grpc, other string }

// columnsOf sorts inst's endpoints into the table's columns. A plaintext
// endpoint shows as host:port, which fits the columns and is what curl
// (with http://) and grpcurl -plaintext take; a TLS one keeps its scheme
// (https://, grpcs://) so it is not mistaken for plaintext. Endpoints of
// other schemes go to the OTHER column in full.
func columnsOf(inst registry.Instance) endpointColumns {
	var h, g, o []string
	for _, ep := range inst.Endpoints {
		scheme, hostPort, _ := strings.Cut(ep, "://")
		switch scheme {
		case "http":
			h = append(h, hostPort)
		case "grpc":
			g = append(g, hostPort)
		case "https":
			h = append(h, ep)
		case "grpcs":
			g = append(g, ep)
		default:
			o = append(o, ep)
		}
	}
	return endpointColumns{http: cell(h), grpc: cell(g), other: cell(o)}
}

// cell joins a column's entries, "-" when there are none.
func cell(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
