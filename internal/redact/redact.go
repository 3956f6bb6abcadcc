// Package redact hides the secrets an address may carry before it is put
// in an error or a log line: the user information of a URL
// (scheme://user:password@host) and its query and fragment, where API
// tokens travel (?token=…). Flags that take such an address refuse those
// parts, and the refusal itself must not repeat the secret.
package redact

import "strings"

// Mask replaces each hidden part.
const Mask = "xxxxx"

// URL returns s with its user information, query and fragment replaced by
// Mask; the rest (scheme, host, port, path) stays, so the message still
// names the address. It works on the text, not on a parsed URL, because
// the addresses it is used for are often the malformed ones a parser
// refuses (whose parse errors quote them whole). A bare "user:pw@host:port"
// without a scheme is masked too.
func URL(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = Mask + authority[i:]
	}
	// The path stays; a query or fragment goes, each as one mask.
	path, hidden := tail, ""
	if i := strings.IndexAny(tail, "?#"); i >= 0 {
		path = tail[:i]
		if tail[i] == '?' {
			hidden = "?" + Mask
		}
		if strings.Contains(tail[i:], "#") {
			hidden += "#" + Mask
		}
	}
	return prefix + authority + path + hidden
}

// URLs is URL for each of ss.
func URLs(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = URL(s)
	}
	return out
}
