package gen

import (
	"bytes"
	"fmt"
	"path"

	"go.yaml.in/yaml/v3"
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

// What SyncDeploy did to a deploy file.
const (
	DeployAdded    = "added"    // the service's entry was added
	DeployGRPCPort = "grpcPort" // the chart entry was given grpcPort
)

// SyncDeploy brings a deploy file in step with a service for `svcgen
// gen`: a service the file lacks is added (AddToDeploy), and a gRPC
// service whose chart entry predates its //warren:grpc line gets grpcPort
// (ChartAddGRPCPort) — without it the chart would publish HTTP only. what
// is "" when the file needed nothing.
func SyncDeploy(file string, b []byte, name string, grpc bool) (out []byte, what string, err error) {
	if !DeployHas(file, b, name) {
		out, ok, err := AddToDeploy(file, b, name, grpc)
		if err != nil || !ok {
			return nil, "", err
		}
		return out, DeployAdded, nil
	}
	if !grpc || !IsChartValues(file) {
		return nil, "", nil
	}
	out, ok, err := ChartAddGRPCPort(b, name)
	if err != nil || !ok {
		return nil, "", err
	}
	return out, DeployGRPCPort, nil
}

// ChartAddGRPCPort gives the service's chart entry grpcPort ChartGRPCPort,
// one line added at the end of the entry at its own indentation, so
// everything the user wrote in the entry stays as it was. An entry that
// sets grpcPort already (to any value, 0 included: the user's choice) or
// no entry gives ok false. The result is checked by parsing it: an entry
// the line cannot be added to safely is an error, and nothing changes.
func ChartAddGRPCPort(file []byte, name string) (out []byte, ok bool, err error) {
	head := []byte("\n  " + name + ":\n")
	start := bytes.Index(file, head)
	if start < 0 {
		return nil, false, nil
	}
	// The entry is the lines after its head that are blank or indented
	// deeper than it; it ends at the next key or comment at depth 2 or less
	// (the next service, svcgen's marker, a top-level key).
	at := start + len(head) // where the new line goes: after the entry's last line
	indent := ""
	for pos := at; pos < len(file); {
		next := len(file)
		if nl := bytes.IndexByte(file[pos:], '\n'); nl >= 0 {
			next = pos + nl + 1
		}
		line := bytes.TrimRight(file[pos:next], "\r\n")
		text := bytes.TrimLeft(line, " ")
		depth := len(line) - len(text)
		if len(text) > 0 && depth <= 2 {
			break
		}
		if len(text) > 0 {
			if text[0] != '#' && indent == "" {
				indent = string(line[:depth])
			}
			if depth == len(indent) && bytes.HasPrefix(text, []byte("grpcPort:")) {
				return nil, false, nil
			}
			at = next
		}
		pos = next
	}
	if indent == "" {
		indent = "    "
	}
	add := fmt.Sprintf("%sgrpcPort: %d\n", indent, ChartGRPCPort)
	if at == len(file) && len(file) > 0 && file[len(file)-1] != '\n' {
		add = "\n" + add
	}
	out = append(append(append([]byte{}, file[:at]...), add...), file[at:]...)
	var values struct {
		Services map[string]struct {
			GRPCPort int `yaml:"grpcPort"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &values); err != nil || values.Services[name].GRPCPort != ChartGRPCPort {
		return nil, false, fmt.Errorf("cannot add grpcPort: %d to the entry of %s (set it by hand)", ChartGRPCPort, name)
	}
	return out, true, nil
}
