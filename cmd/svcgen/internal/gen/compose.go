package gen

import (
	"bytes"
	"fmt"
	"strings"
)

// Compose markers: `svcgen new` inserts a new service's entries above
// them, so the compose files stay the user's to edit everywhere else.
const (
	composeServicesMarker = "  # svcgen: services go above this line"
	composeBuildsMarker   = "  # svcgen: builds go above this line"
)

// composeEntries is a service in both registry profiles: NAME on etcd,
// NAME-consul on Consul. It uses the anchors every Warren compose file
// declares (*service, *env, *etcd-env, *consul-env). The health check
// leaves "registered" out: a registry outage fails it on every instance
// at once while they keep serving (docs/lifecycle.md).
func composeEntries(name string) string {
	var b strings.Builder
	for _, p := range []struct{ suffix, registry, env string }{{"", "etcd", "etcd-env"}, {"-consul", "consul", "consul-env"}} {
		fmt.Fprintf(&b, `  %[1]s%[2]s:
    <<: *service
    profiles: [%[3]s]
    command: ["%[1]s"]
    environment:
      <<: [*env, *%[4]s]
    healthcheck:
      test: ["CMD", "%[1]s", "healthcheck", "--exclude", "registered"]
      interval: 2s
      timeout: 3s
      retries: 15
      start_period: 5s
    depends_on:
      %[3]s: {condition: service_healthy}

`, name, p.suffix, p.registry, p.env)
	}
	return b.String()
}

// composeBuilds is a service's build override in compose.public.yaml.
func composeBuilds(name string) string {
	return fmt.Sprintf("  %[1]s:\n    build: *public-build\n  %[1]s-consul:\n    build: *public-build\n", name)
}

// AddToCompose returns a compose file with the service added above the
// file's svcgen marker, or ok false when the file has no marker (it is
// left alone) or already has the service.
func AddToCompose(file []byte, name string) (out []byte, ok bool, err error) {
	for _, m := range []struct{ marker, text string }{{composeServicesMarker, composeEntries(name)}, {composeBuildsMarker, composeBuilds(name)}} {
		i := bytes.Index(file, []byte(m.marker+"\n"))
		if i < 0 {
			continue
		}
		if ComposeHas(file, name) {
			return nil, false, fmt.Errorf("it already has a service %s", name)
		}
		out = append(append(append([]byte{}, file[:i]...), m.text...), file[i:]...)
		return out, true, nil
	}
	return nil, false, nil
}

// ComposeHas reports whether a compose file has an entry for the service
// in either profile.
func ComposeHas(file []byte, name string) bool {
	return bytes.Contains(file, []byte("\n  "+name+":\n")) || bytes.Contains(file, []byte("\n  "+name+"-consul:\n"))
}
