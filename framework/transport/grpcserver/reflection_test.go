package grpcserver_test

import (
	"context"
	"flag"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/settings"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// listServices asks the server's reflection service for its services.
func listServices(t *testing.T, ep string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(dial(t, ep)).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	// A Send on a stream the server has already ended says io.EOF; the
	// status (Unimplemented) comes from Recv.
	_ = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

// --grpc-reflection serves server reflection, listing the service (what
// grpcurl asks first); without it reflection is not served.
func TestReflection_OnlyWithTheSetting(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := grpcserver.DefaultSettings()
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		if err := settings.Bind(fs, &s); err != nil {
			t.Fatal(err)
		}
		var args []string
		if on {
			args = []string{"--grpc-reflection"}
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		opts, err := s.Options(config.Config{Listen: "127.0.0.1:0"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := serve(t, "n1", append(opts, grpcserver.WithAddr("127.0.0.1:0"))...)
		names, err := listServices(t, r.ep)
		switch {
		case on && (err != nil || !slices.Contains(names, echoService)):
			t.Errorf("with --grpc-reflection: services %v, %v; want %q among them", names, err, echoService)
		case !on && status.Code(err) != codes.Unimplemented:
			t.Errorf("without --grpc-reflection: services %v, %v; want Unimplemented", names, err)
		}
	}
}
