package config

import (
	"slices"
	"strings"

	urlredact "github.com/warren-mesh/warren/internal/redact"
)

// Changed returns, as log key/value pairs, every setting whose value
// differs from its default, the flag's name as the key and as the value
// "VALUE (flag)", "VALUE (from WARREN_…)" or "VALUE (key … of FILE)":
// a wrong WARREN_DATA_DIR or --etcd-prefix showed nowhere, a variable not
// even in /debug/pprof/cmdline (report j57b F1, F8). Secrets are masked:
// the value of a flag named for a password, token or secret, and the user
// information and query of an address (internal/redact). A Config Parse
// did not make returns nothing.
func (c Config) Changed() []any {
	if c.sources == nil {
		return nil
	}
	names := make([]string, 0, len(c.sources.src))
	for name := range c.sources.src {
		names = append(names, name)
	}
	slices.Sort(names)
	var kv []any
	for _, name := range names {
		f := c.sources.fs.Lookup(name)
		if f == nil || f.Value.String() == f.DefValue {
			continue // set, but to its default
		}
		from := c.sources.src[name]
		if from == "" {
			from = "flag"
		}
		kv = append(kv, name, shown(name, f.Value.String())+" ("+from+")")
	}
	return kv
}

// secretFlag reports whether a flag's value is a secret by its name
// (--etcd-password, --consul-token, a service's --api-secret, --api-key
// or --db-credentials). A name with "key" may be a path (--tls-key): it
// is masked too, since a raw key in a log line costs more than a path
// missing from it.
func secretFlag(name string) bool {
	for _, w := range []string{"password", "passwd", "token", "secret", "key", "credential"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// shown is v as it may be logged: masked whole for a secret flag, else
// each comma-separated address with its user information and query masked.
func shown(name, v string) string {
	if secretFlag(name) {
		return redact(v)
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		if strings.Contains(p, "://") || strings.Contains(p, "@") {
			parts[i] = urlredact.URL(p)
		}
	}
	return strings.Join(parts, ",")
}
