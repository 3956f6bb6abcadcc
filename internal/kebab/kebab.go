// Package kebab turns Go names into kebab case, the one rule svcgen's
// default routes (GetBalance → /get-balance) and a service's setting
// flags (MaxCharge → --max-charge) share.
package kebab

import (
	"strings"
	"unicode"
)

// Case is name in kebab case: GetBalance → get-balance, CreateHTTPServer
// → create-http-server, V2Sync → v2-sync.
func Case(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
