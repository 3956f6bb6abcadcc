package gen

import (
	"bytes"
	"fmt"
	"path"
)

// chartServicesMarker is where `svcgen new` adds a service to the Helm
// chart's values (deploy/k8s/values.yaml): the chart renders a
// Deployment, headless Service and PodDisruptionBudget per entry.
const chartServicesMarker = "  # svcgen: chart services go above this line"

// ChartGRPCPort is the grpcPort a gRPC service gets in the chart: the
// port of grpcserver.DefaultAddr, where the generated main listens unless
// told otherwise (the chart sets WARREN_GRPC_LISTEN to it as well).
const ChartGRPCPort = 9090

// AddToChart returns the chart's values with the service added above
// the marker, or ok false when the file has no marker (it is left alone).
// A service that serves gRPC (grpc) gets grpcPort, which the chart turns
// into a container and Service port named grpc and WARREN_GRPC_LISTEN;
// without it the chart would publish HTTP only.
func AddToChart(file []byte, name string, grpc bool) (out []byte, ok bool, err error) {
	i := bytes.Index(file, []byte(chartServicesMarker+"\n"))
	if i < 0 {
		return nil, false, nil
	}
	if ChartHas(file, name) {
		return nil, false, fmt.Errorf("it already has a service %s", name)
	}
	entry := fmt.Sprintf("  %s:\n    replicas: 2\n", name)
	if grpc {
		entry += fmt.Sprintf("    grpcPort: %d\n", ChartGRPCPort)
	}
	return append(append(append([]byte{}, file[:i]...), entry...), file[i:]...), true, nil
}

// ChartHas reports whether the chart's values list the service.
func ChartHas(file []byte, name string) bool {
	return bytes.Contains(file, []byte("\n  "+name+":\n"))
}

// IsChartValues reports whether a deploy file is a chart's values (else
// it is a compose file).
func IsChartValues(file string) bool { return path.Base(file) == "values.yaml" }

// AddToDeploy adds the service to a deploy file svcgen keeps in step: a
// compose file or the chart's values.yaml. grpc says the service serves
// gRPC too (//warren:grpc). Compose needs nothing for it: the shared
// environment (*env) sets WARREN_GRPC_LISTEN for every service.
func AddToDeploy(file string, b []byte, name string, grpc bool) ([]byte, bool, error) {
	if IsChartValues(file) {
		return AddToChart(b, name, grpc)
	}
	return AddToCompose(b, name)
}

// DeployHas reports whether a deploy file has the service.
func DeployHas(file string, b []byte, name string) bool {
	if IsChartValues(file) {
		return ChartHas(b, name)
	}
	return ComposeHas(b, name)
}
