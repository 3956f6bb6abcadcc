// Package nginx keeps nginx's upstreams in step with discovery: it renders
// one upstream block per service from an edge.Snapshot (weights from the
// instances, a `down` placeholder when a service has none, a balancing
// method per service) through a template the user may replace, writes the
// file atomically, has nginx validate it (nginx -t), reloads nginx, and
// puts the last good file back when validation fails.
//
// A Syncer does that for an nginx the user runs; Start runs an nginx of
// its own (for `warren nginx --listen`, `make up EDGE=nginx` and tests)
// whose server proxies /NAME/… to upstream NAME.
package nginx

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
)

// DefaultTemplate renders every service as an upstream named after it.
// A replacement gets the same data (Data) and may use Go's text/template
// functions; it must produce what nginx accepts inside its http block.
const DefaultTemplate = `# Written by warren nginx from the registry: every change rewrites this file.
{{- range .Upstreams}}

upstream {{.Name}} {
{{- with .Balance}}
    {{.}};
{{- end}}
{{- range .Servers}}
    server {{.Address}} weight={{.Weight}} max_fails={{$.MaxFails}} fail_timeout={{$.FailTimeout}}; # {{.ID}}{{with .Zone}} zone={{.}}{{end}}
{{- else}}
    # no instance registered: nginx refuses an empty upstream, so a placeholder that is never used
    server 127.0.0.1:1 down;
{{- end}}
}
{{- end}}
`

// Data is what a template renders.
type Data struct {
	Upstreams []Upstream
	// MaxFails and FailTimeout are the passive health check every server
	// line gets in the default template (nginx's max_fails, fail_timeout).
	MaxFails    int
	FailTimeout string
}

// Upstream is one service.
type Upstream struct {
	// Name is the service name, a DNS label, so it is a valid upstream name.
	Name string
	// Balance is the balancing directive without its semicolon:
	// "least_conn", "ip_hash", "hash $request_uri consistent", or empty
	// for nginx's weighted round robin.
	Balance string
	// Servers are the instances with an HTTP endpoint, sorted by ID; empty
	// when the service has none (the template writes a placeholder).
	Servers []Server
	// Skipped counts instances without a usable http endpoint (gRPC-only,
	// https only: nginx is not set up for TLS to upstreams; or an IPv6
	// address with a zone, which nginx cannot parse), and SkippedIDs
	// names them.
	Skipped    int
	SkippedIDs []string
}

// Server is one instance.
type Server struct {
	Address string // host:port of the instance's http endpoint
	Weight  int    // the instance's weight (edge.Weight): registry.DefaultWeight when unset, at most edge.MaxWeight
	ID      string
	Zone    string
	Version string
}

// ErrBadBalance is returned (wrapped) for a balancing method nginx does not
// have or a hash key that could break out of its directive.
var ErrBadBalance = errors.New("bad balancing method")

var hashKeyRE = regexp.MustCompile(`^[A-Za-z0-9_$.:/-]+$`)

// ParseBalance checks one balancing method as given on the command line and
// returns the directive: "round_robin" (or "") is nginx's default,
// "least_conn", "ip_hash", "random", "random two least_conn", "hash KEY"
// or "hash KEY consistent" where KEY is made of nginx variables and plain
// characters.
func ParseBalance(s string) (string, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 0 || (len(f) == 1 && f[0] == "round_robin"):
		return "", nil
	case len(f) == 1 && (f[0] == "least_conn" || f[0] == "ip_hash" || f[0] == "random"):
		return f[0], nil
	case len(f) == 3 && f[0] == "random" && f[1] == "two" && f[2] == "least_conn":
		return "random two least_conn", nil
	case f[0] == "hash" && (len(f) == 2 || (len(f) == 3 && f[2] == "consistent")) && hashKeyRE.MatchString(f[1]):
		return strings.Join(f, " "), nil
	}
	return "", fmt.Errorf("%w %q: want round_robin, least_conn, ip_hash, random, random two least_conn, or hash KEY [consistent]", ErrBadBalance, s)
}

// Renderer turns snapshots into the upstreams file.
type Renderer struct {
	tmpl        *template.Template
	balance     map[string]string
	defBalance  string
	maxFails    int
	failTimeout string
}

// RenderOption adjusts a Renderer.
type RenderOption func(*Renderer) error

// WithTemplate replaces DefaultTemplate; text is parsed at once and a
// parse error is returned by NewRenderer.
func WithTemplate(text string) RenderOption {
	return func(r *Renderer) error {
		t, err := template.New("upstreams").Option("missingkey=error").Parse(text)
		if err != nil {
			return fmt.Errorf("nginx: template: %w", err)
		}
		r.tmpl = t
		return nil
	}
}

// WithBalance sets the balancing method (see ParseBalance) of one service,
// or of every service without its own when service is "".
func WithBalance(service, method string) RenderOption {
	return func(r *Renderer) error {
		d, err := ParseBalance(method)
		if err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
		if service == "" {
			r.defBalance = d
			return nil
		}
		if !registry.ValidName(service) {
			return fmt.Errorf("nginx: balance for %q: %w", service, registry.ErrInvalidInstance)
		}
		r.balance[service] = d
		return nil
	}
}

// WithPassiveHealth sets max_fails and fail_timeout of every server
// (default 1 and 10s: one failed attempt takes a server out for 10 s,
// which nginx's proxy_next_upstream turns into a retry on another one).
func WithPassiveHealth(maxFails, failTimeoutSeconds int) RenderOption {
	return func(r *Renderer) error {
		if maxFails < 0 || failTimeoutSeconds < 1 {
			return fmt.Errorf("nginx: want max_fails ≥ 0 and fail_timeout ≥ 1s, got %d and %ds", maxFails, failTimeoutSeconds)
		}
		r.maxFails, r.failTimeout = maxFails, strconv.Itoa(failTimeoutSeconds)+"s"
		return nil
	}
}

// NewRenderer returns a Renderer with DefaultTemplate and round robin
// unless options say otherwise.
func NewRenderer(opts ...RenderOption) (*Renderer, error) {
	r := &Renderer{balance: map[string]string{}, maxFails: 1, failTimeout: "10s"}
	if err := WithTemplate(DefaultTemplate)(r); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Data returns what the template gets for snap.
func (r *Renderer) Data(snap edge.Snapshot) Data {
	d := Data{MaxFails: r.maxFails, FailTimeout: r.failTimeout}
	for _, svc := range snap.Services {
		u := Upstream{Name: svc.Name, Balance: r.defBalance}
		if b, ok := r.balance[svc.Name]; ok {
			u.Balance = b
		}
		for _, inst := range svc.Instances {
			ep, ok := inst.Endpoint("http")
			var host string
			var port int
			var err error
			if ok {
				_, host, port, err = registry.ParseEndpoint(ep)
			}
			if err == nil && strings.Contains(host, "%") {
				// An IPv6 address with a zone: the registry takes it,
				// nginx cannot parse it, and one such line made nginx -t
				// refuse every set while it stayed registered.
				err = errors.New("nginx takes no IPv6 zone")
			}
			if !ok || err != nil {
				u.Skipped++
				u.SkippedIDs = append(u.SkippedIDs, printable(inst.ID))
				continue
			}
			w := edge.Weight(inst)
			u.Servers = append(u.Servers, Server{
				Address: net.JoinHostPort(host, strconv.Itoa(port)),
				Weight:  w, ID: printable(inst.ID), Zone: printable(inst.Zone), Version: printable(inst.Version),
			})
		}
		d.Upstreams = append(d.Upstreams, u)
	}
	return d
}

// Render returns the upstreams file for snap.
func (r *Renderer) Render(snap edge.Snapshot) ([]byte, error) { return r.render(r.Data(snap)) }

func (r *Renderer) render(d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := r.tmpl.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("nginx: render: %w", err)
	}
	return b.Bytes(), nil
}

// printable keeps a registry field from ending the comment it is written
// in: a record written past Validate may hold anything.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
