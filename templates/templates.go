// Package templates holds the text/template files cmd/svcgen renders. They
// live at the top of the repository so a reader finds them next to the
// code they produce; this package only embeds them.
//
// Files named *_gen.go.tmpl are rewritten by every `svcgen gen`; the others
// are written once by `svcgen new` and belong to the user from then on.
package templates

import "embed"

// FS holds every *.tmpl file of this directory and of its per-transport
// directories (http/, …).
//
//go:embed *.tmpl */*.tmpl
var FS embed.FS
