package config

import "testing"

// The start line's values hide secrets as --help does: a password or
// token flag shows only that it is set, an address its host without the
// user information and query (internal/redact).
func TestShown_MasksSecrets(t *testing.T) {
	for _, c := range []struct{ name, v, want string }{
		{"etcd-password", "hunter2", "(set)"},
		{"consul-token", "abc", "(set)"},
		{"api-secret", "abc", "(set)"},
		{"api-key", "sk_live_abc", "(set)"},
		{"db-credentials", "u:p", "(set)"},
		{"tls-key", "/etc/tls/key.pem", "(set)"},
		{"consul-addr", "https://alice:pw@10.0.0.1:8501,10.0.0.2:8500", "https://xxxxx@10.0.0.1:8501,10.0.0.2:8500"},
		{"otlp-endpoint", "https://collector:4317?token=abc", "https://collector:4317?xxxxx"},
		{"data-dir", "/var/lib/user", "/var/lib/user"},
	} {
		if got := shown(c.name, c.v); got != c.want {
			t.Errorf("shown(%s, %q) = %q, want %q", c.name, c.v, got, c.want)
		}
	}
}
