package gen

import (
	"fmt"
	"go/token"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/warren-mesh/warren/templates"
)

// HTTPEmitter is the HTTP/JSON transport: the //warren:http routes, the
// server's router and request decoders (NewHTTPHandler) and the client's
// per-method endpoints (MakeHTTPClientEndpoints), in transport_gen.go.
type HTTPEmitter struct{}

var httpTmpl = template.Must(template.New("http").ParseFS(templates.FS, "http/*.tmpl"))

// Name implements Emitter.
func (HTTPEmitter) Name() string { return "http" }

// File implements Emitter.
func (HTTPEmitter) File() string { return "transport_gen.go" }

// httpService is the HTTP view of a service: what transport_gen.go.tmpl
// renders.
type httpService struct {
	*Service
	Methods              []*httpMethod
	NeedURL, NeedStrconv bool
	RouteTable           []string // NewHTTPHandler's doc lines
}

// httpMethod is one method and its route.
type httpMethod struct {
	*Method
	Verb       string // GET, POST, …
	Path       string // /users/{id}
	Status     int    // success status; 0: the encoder's default (200)
	Query      bool   // the server decodes the query string (GET, DELETE)
	PathParams []pathParam
	// QueryFields are the client's query parameters (GET, DELETE).
	QueryFields []queryField
	routePos    Annotation
}

// pathParam binds one {name} of the path to a request field.
type pathParam struct {
	Name    string // as in the path and the json tag
	Field   string // Go field name
	Decoder string // PathString or PathInt
	kind    Kind
}

// queryField is one request field the client sends in the query string.
type queryField struct {
	SetQuery string // Go statements that add it to q
}

// Prepare implements Emitter.
func (e HTTPEmitter) Prepare(svc *Service, pkg *Package) (Transport, Problems) {
	hs := &httpService{Service: svc}
	var probs Problems
	report := func(pos Annotation, m *Method, format string, args ...any) {
		p := pos.Pos
		if !p.IsValid() {
			p = m.Pos
		}
		probs = append(probs, Problem{Pos: p, Method: m.Name, Msg: fmt.Sprintf(format, args...)})
	}
	for _, m := range svc.Methods {
		hm := &httpMethod{Method: m, Verb: http.MethodPost, Path: "/" + Kebab(m.Name)}
		lines := m.Annotations[e.Name()]
		if len(lines) > 1 {
			report(lines[1], m, "a second //warren:http line; a method has one route")
			continue
		}
		if len(lines) == 1 {
			hm.routePos = lines[0]
			if msg := hm.route(lines[0]); msg != "" {
				report(lines[0], m, "%s", msg)
				continue
			}
		}
		for _, p := range hm.bind(pkg) {
			probs = append(probs, p)
		}
		hs.Methods = append(hs.Methods, hm)
	}
	probs = append(probs, hs.checkRoutes()...)
	// Every service serves HTTP, a //warren:grpc one too, so its bodies
	// are encoding/json's whatever else it serves. The protobuf mapping
	// refuses most of what JSON cannot carry in its own words (unexported
	// state, channels, embedded fields): where it refuses the same field
	// or type, the JSON problem yields to it rather than name it twice. A
	// type protobuf carries whole but encoding/json would not (a
	// pointer-receiver MarshalJSON on a value) is left to this check.
	grpc := len(svc.Annotations[GRPCEmitter{}.Name()]) > 0
	for _, p := range hs.checkJSON(pkg) {
		p.yields = grpc
		probs = append(probs, p)
	}
	hs.derive()
	return hs, probs
}

// route reads `//warren:http METHOD /path [status]`; a non-empty result
// is what is wrong.
func (m *httpMethod) route(a Annotation) string {
	const form = "want `//warren:http METHOD /path [status]`, e.g. `//warren:http GET /users/{id}` or `//warren:http POST /users 201`"
	args := a.Args
	if len(args) < 2 || len(args) > 3 {
		return fmt.Sprintf("%q: %s", a.Text, form)
	}
	if !slices.Contains(httpMethods, args[0]) {
		return fmt.Sprintf("HTTP method %q: want one of %s (upper case)", args[0], strings.Join(httpMethods, ", "))
	}
	m.Verb, m.Path = args[0], args[1]
	if err := checkPath(m.Path); err != nil {
		return fmt.Sprintf("path %q: %v", m.Path, err)
	}
	if len(args) == 3 {
		n, err := strconv.Atoi(args[2])
		switch {
		case err != nil || n < 200 || n > 299:
			return fmt.Sprintf("status %q: want a success status 200…299 (errors get theirs from svcerr kinds)", args[2])
		case n == http.StatusNoContent || n == http.StatusResetContent:
			return fmt.Sprintf("status %d allows no body, but the response is encoded as JSON; use 200", n)
		}
		m.Status = n
	}
	return ""
}

var httpMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Pattern is the route as net/http writes it: "GET /users/{id}".
func (m *httpMethod) Pattern() string { return m.Verb + " " + m.Path }

// Encoder is the response encoder expression.
func (m *httpMethod) Encoder() string {
	if m.Status == 0 {
		return "httptransport.EncodeJSON"
	}
	return fmt.Sprintf("httptransport.EncodeJSONStatus(%d)", m.Status)
}

// CallOpts are the extra arguments of client.NewEndpoint: the method's
// name (for its span and series) and its retry class when it is not the
// verb's own.
func (m *httpMethod) CallOpts() string {
	opts := fmt.Sprintf(", client.Method(%q)", m.Name)
	switch {
	case m.NoRetry:
		opts += ", client.NoRetry()"
	case m.Idempotent && m.Verb != http.MethodGet:
		opts += ", client.Idempotent()"
	case m.Keyed:
		opts += ", client.Keyed()"
	}
	return opts
}

// PathExpr is the Go expression of the request path.
func (m *httpMethod) PathExpr() string {
	var parts []string
	lit := ""
	for _, seg := range strings.Split(m.Path, "/")[1:] {
		lit += "/"
		name, ok := wildcard(seg)
		if !ok {
			lit += seg
			continue
		}
		parts = append(parts, strconv.Quote(lit))
		lit = ""
		for _, p := range m.PathParams {
			if p.Name == name {
				parts = append(parts, p.format("req."+p.Field))
			}
		}
	}
	if lit != "" {
		parts = append(parts, strconv.Quote(lit))
	}
	return strings.Join(parts, " + ")
}

func (p pathParam) format(x string) string {
	switch p.kind {
	case KindInt:
		return "strconv.FormatInt(int64(" + x + "), 10)"
	case KindUint:
		return "strconv.FormatUint(uint64(" + x + "), 10)"
	}
	return "url.PathEscape(" + x + ")"
}

// checkPath accepts /literal/{param}/… paths.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /")
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(p, "/")[1:] {
		if !strings.ContainsAny(seg, "{}") {
			if strings.ContainsAny(seg, " ?#%") {
				return fmt.Errorf("segment %q has a character that must not appear in a route", seg)
			}
			continue
		}
		name, ok := wildcard(seg)
		switch {
		case seg == "{$}":
			return fmt.Errorf("{$} is not supported; write the path without it")
		case strings.HasSuffix(seg, "...}"):
			return fmt.Errorf("%s: multi-segment wildcards are not supported; use one {name} per segment", seg)
		case !ok || !token.IsIdentifier(name):
			return fmt.Errorf("segment %q: a parameter is a whole segment {name}, name a Go identifier", seg)
		case seen[name]:
			return fmt.Errorf("parameter {%s} appears twice", name)
		}
		seen[name] = true
	}
	return nil
}

func wildcard(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// bind matches path parameters to request fields and, for GET and DELETE,
// the remaining fields to query parameters.
func (m *httpMethod) bind(pkg *Package) Problems {
	var probs Problems
	report := func(pos Field, format string, args ...any) {
		probs = append(probs, Problem{Pos: pos.Pos, Method: m.Name, Msg: fmt.Sprintf(format, args...)})
	}
	m.Query = m.Verb == http.MethodGet || m.Verb == http.MethodDelete
	fields := pkg.Fields(m.Req)
	exists := pkg.Exists(m.Req)
	bound := map[string]bool{}
	for _, seg := range strings.Split(m.Path, "/") {
		name, ok := wildcard(seg)
		if !ok {
			continue
		}
		if !exists {
			m.PathParams = append(m.PathParams, pathParam{Name: name, Field: exportedField(name), Decoder: "PathString", kind: KindString})
			continue
		}
		i := slices.IndexFunc(fields, func(f Field) bool { return !f.Embedded && f.JSON == name })
		if i < 0 {
			report(Field{Pos: pkg.TypePos(m.Req)}, "path parameter {%s} matches no field of %s; add a field with the json tag %q", name, m.Req, name)
			continue
		}
		f := fields[i]
		bound[f.Name] = true
		p := pathParam{Name: name, Field: f.Name, kind: f.Kind}
		switch {
		case f.Kind == KindString && f.Exact:
			p.Decoder = "PathString"
		case (f.Kind == KindInt || f.Kind == KindUint) && !f.Small:
			p.Decoder = "PathInt"
		default:
			report(f, "path parameter {%s} binds to %s.%s of type %s; a path parameter must be a string or an int, int32, int64, uint, uint32 or uint64 (or a named type of one of those integers)", name, m.Req, f.Name, f.Type)
			continue
		}
		m.PathParams = append(m.PathParams, p)
	}
	if !m.Query {
		return probs
	}
	for _, f := range fields {
		if bound[f.Name] {
			continue
		}
		if f.Embedded {
			report(f, "%s embeds %s; a %s request travels in the query string, field by field, so list the fields in %s itself", m.Req, f.Name, m.Verb, m.Req)
			continue
		}
		set, ok := queryStmt(f)
		if !ok {
			report(f, "field %s.%s has type %s, which cannot travel in a query string (a %s request has no body); use a string, bool, integer or float field (or a slice of one), or make the method POST", m.Req, f.Name, f.Type, m.Verb)
			continue
		}
		m.QueryFields = append(m.QueryFields, queryField{SetQuery: set})
	}
	return probs
}

// queryStmt is the client code that puts f in q when it is not zero.
func queryStmt(f Field) (string, bool) {
	x := "req." + f.Name
	key := strconv.Quote(f.JSON)
	if f.Kind == KindSlice {
		v, ok := formatValue(f.Elem, f.Exact, "v")
		if !ok {
			return "", false
		}
		return fmt.Sprintf("\tfor _, v := range %s {\n\t\tq.Add(%s, %s)\n\t}", x, key, v), true
	}
	if f.Kind == KindBool {
		return fmt.Sprintf("\tif %s {\n\t\tq.Set(%s, \"true\")\n\t}", x, key), true
	}
	v, ok := formatValue(f.Kind, f.Exact, x)
	if !ok {
		return "", false
	}
	zero := "0"
	if f.Kind == KindString {
		zero = `""`
	}
	return fmt.Sprintf("\tif %s != %s {\n\t\tq.Set(%s, %s)\n\t}", x, zero, key, v), true
}

func formatValue(k Kind, exact bool, x string) (string, bool) {
	switch k {
	case KindString:
		if exact {
			return x, true
		}
		return "string(" + x + ")", true
	case KindInt:
		return "strconv.FormatInt(int64(" + x + "), 10)", true
	case KindUint:
		return "strconv.FormatUint(uint64(" + x + "), 10)", true
	case KindFloat:
		return "strconv.FormatFloat(float64(" + x + "), 'g', -1, 64)", true
	case KindBool:
		return "strconv.FormatBool(bool(" + x + "))", true
	}
	return "", false
}

// checkRoutes finds routes net/http would refuse together at start-up: it
// registers each pair on a fresh ServeMux, which panics on exactly those
// conflicts, and reports net/http's reason without its panic text.
func (hs *httpService) checkRoutes() Problems {
	var probs Problems
	for i, m := range hs.Methods {
		for _, o := range hs.Methods[:i] {
			why, ok := routeConflict(o.Pattern(), m.Pattern())
			if !ok {
				continue
			}
			pos := m.routePos.Pos
			if !pos.IsValid() {
				pos = m.Pos
			}
			probs = append(probs, Problem{Pos: pos, Method: m.Name,
				Msg: fmt.Sprintf("route %s conflicts with %s's route %s: %s; give one of them a different //warren:http path", m.Pattern(), o.Name, o.Pattern(), why)})
			break
		}
	}
	return probs
}

// routeConflict reports whether net/http refuses patterns a and b on one
// mux, and why, in net/http's words minus the panic's first line (which
// names the registering source file).
func routeConflict(a, b string) (why string, conflict bool) {
	defer func() {
		if r := recover(); r != nil {
			conflict = true
			lines := strings.Split(strings.TrimSpace(fmt.Sprint(r)), "\n")
			if len(lines) > 1 {
				lines = lines[1:]
			}
			for i := range lines {
				l := strings.TrimSuffix(strings.TrimSpace(lines[i]), ".")
				if i > 0 && strings.HasPrefix(l, "But ") {
					l = "but " + l[4:]
				}
				lines[i] = l
			}
			why = strings.Join(lines, "; ")
			if strings.Contains(why, "registered at") || why == "" {
				why = "both match the same requests"
			}
		}
	}()
	if a == b {
		return "the same route twice", true
	}
	mux := http.NewServeMux()
	mux.Handle(a, http.NotFoundHandler())
	mux.Handle(b, http.NotFoundHandler())
	return "", false
}

// derive fills the fields the template uses.
func (hs *httpService) derive() {
	mw, pw := 0, 0
	for _, m := range hs.Methods {
		mw, pw = max(mw, len(m.Verb)), max(pw, len(m.Path))
		for _, p := range m.PathParams {
			hs.NeedURL = hs.NeedURL || p.kind == KindString
			hs.NeedStrconv = hs.NeedStrconv || p.kind != KindString
		}
		for _, q := range m.QueryFields {
			hs.NeedURL = true
			hs.NeedStrconv = hs.NeedStrconv || strings.Contains(q.SetQuery, "strconv.")
		}
	}
	for _, m := range hs.Methods {
		line := fmt.Sprintf("%-*s %-*s  %s", mw, m.Verb, pw, m.Path, m.Name)
		if m.Status != 0 {
			line += fmt.Sprintf(" → %d", m.Status)
		}
		hs.RouteTable = append(hs.RouteTable, line)
	}
}

func (hs *httpService) method(name string) *httpMethod {
	for _, m := range hs.Methods {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Declares implements Transport.
func (hs *httpService) Declares() []string {
	names := []string{"NewHTTPHandler", "MakeHTTPClientEndpoints"}
	for _, m := range hs.Methods {
		names = append(names, "decode"+m.Name+"Request", "encode"+m.Name+"Path")
	}
	return names
}

// Route implements Transport.
func (hs *httpService) Route(method string) string {
	m := hs.method(method)
	if m == nil {
		return ""
	}
	r := m.Pattern()
	if m.Status != 0 {
		r += fmt.Sprintf(" → %d", m.Status)
	}
	return r
}

// RequestFields implements Transport: the path parameters.
func (hs *httpService) RequestFields(method string) []string {
	m := hs.method(method)
	if m == nil {
		return nil
	}
	var out []string
	for _, p := range m.PathParams {
		out = append(out, p.Name)
	}
	return out
}

// Client implements Transport.
func (hs *httpService) Client() ClientTransport {
	return ClientTransport{Name: "HTTP", Endpoints: "MakeHTTPClientEndpoints"}
}

// Render implements Transport.
func (hs *httpService) Render() ([]byte, error) {
	return execute(httpTmpl, "transport_gen.go.tmpl", hs)
}
