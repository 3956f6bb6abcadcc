package gen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/token"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"text/template"

	"github.com/warren-mesh/warren/templates"
)

// GRPCEmitter is the gRPC transport, on for a service whose Service
// interface carries a //warren:grpc line: a .proto derived from the Go
// types (NAMEpb/NAME.proto, compiled by protoc into the same directory)
// and, in grpc_gen.go, go-kit transport/grpc server and client adapters
// that convert between the Go types and the messages.
type GRPCEmitter struct{}

var grpcTmpl = template.Must(template.New("grpc").ParseFS(templates.FS, "grpc/*.tmpl"))

// Name implements Emitter.
func (GRPCEmitter) Name() string { return "grpc" }

// File implements Emitter.
func (GRPCEmitter) File() string { return "grpc_gen.go" }

// TestFile implements TestFiler: grpc_gen_test.go round-trips every type
// the messages carry through grpc_gen.go's conversions
// (svcgentest.RoundTrip), so a field added without a gen fails `go test`.
func (GRPCEmitter) TestFile() string { return "grpc_gen_test.go" }

// grpcService is the gRPC view of a service: what grpc_gen.go.tmpl and
// service.proto.tmpl render.
type grpcService struct {
	*Service
	PB           string // Go package of the messages: userpb
	ProtoPackage string // user.v1
	GRPCName     string // the proto service: UserService
	Methods      []*grpcMethod
	Messages     []*protoMessage
	// Retired are the messages of the previous .proto the service no
	// longer uses, kept with every number and name they had reserved, so
	// a message of that name that comes back never reuses them.
	Retired  []*protoMessage
	Imports  []string // well-known .proto files the messages use
	NeedTime bool     // grpc_gen.go converts timestamps or durations
	Helpers  map[string]bool
}

// grpcMethod is one rpc.
type grpcMethod struct {
	*Method
	// Retry is the grpcclient option of the method's retry class.
	Retry string
	// Doc is the method's doc comment as .proto comment lines
	// (protodoc.go).
	Doc []string
}

// Idempotent says whether the .proto marks the rpc IDEMPOTENT.
func (m *grpcMethod) IdempotentRPC() bool { return m.Retry == "grpcclient.Idempotent()" }

// protoMessage is one Go struct type as a message.
type protoMessage struct {
	Name   string // the Go type and the message
	Fields []*protoField
	// Doc is the type's doc comment as .proto comment lines (protodoc.go).
	Doc []string
	// Reserved are the message's reserved lines: numbers, then names
	// (protonum.go).
	Reserved []protoReserved
	// Optional says a field is proto3 optional: fromPB reads it from the
	// message's field, not its nil-safe getter.
	Optional bool
	// pbNames are the Go names protoc-gen-go has given the fields so far,
	// and whether each has a getter (pbFieldNames).
	pbNames map[string]bool
}

// protoField is one field of a message and its conversions.
type protoField struct {
	Type   string // the .proto type: "repeated Item"
	Name   string // the .proto name: "items"
	Num    int    // the field number, set once the message is complete
	GoName string // the Go struct's field
	PBName string // the generated message's field (pbFieldNames)
	ToPB   string // Go expression of the message field from v (the Go struct)
	FromPB string // Go expression of the Go field from m (the message)
	// Doc is the field's doc comment, and the values of its named string
	// type's constants, as .proto comment lines (protodoc.go).
	Doc []string
}

// grpcConv is how one Go type travels: its proto type and the conversions
// both ways. fn names a function of one argument (usable as a value);
// otherwise to and from wrap an expression.
type grpcConv struct {
	proto          string // int64, User, google.protobuf.Timestamp
	goType         string // as written
	pbType         string // Go type of the message field (scalars only; "" otherwise)
	toFn, fromFn   string // function names, when the conversion is one
	to, from       func(x string) string
	repeated, map_ bool
	// optional is a proto3 optional scalar: a pointer to a scalar, whose
	// nil is the absent field.
	optional bool
}

func (c grpcConv) toExpr(x string) string {
	if c.toFn != "" {
		return c.toFn + "(" + x + ")"
	}
	return c.to(x)
}

func (c grpcConv) fromExpr(x string) string {
	if c.fromFn != "" {
		return c.fromFn + "(" + x + ")"
	}
	return c.from(x)
}

// toFunc and fromFunc are the conversions as function values.
func (c grpcConv) toFunc() string {
	if c.toFn != "" {
		return c.toFn
	}
	return fmt.Sprintf("func(v %s) %s { return %s }", c.goType, c.pbType, c.to("v"))
}

func (c grpcConv) fromFunc() string {
	if c.fromFn != "" {
		return c.fromFn
	}
	return fmt.Sprintf("func(v %s) %s { return %s }", c.pbType, c.goType, c.from("v"))
}

// protoScalars maps Go's predeclared types to proto scalars and the Go
// type protoc-gen-go gives them.
var protoScalars = map[string][2]string{
	"string": {"string", "string"}, "bool": {"bool", "bool"},
	"int": {"int64", "int64"}, "int64": {"int64", "int64"},
	"int32": {"int32", "int32"}, "rune": {"int32", "int32"}, "int16": {"int32", "int32"}, "int8": {"int32", "int32"},
	"uint": {"uint64", "uint64"}, "uint64": {"uint64", "uint64"},
	"uint32": {"uint32", "uint32"}, "uint16": {"uint32", "uint32"}, "uint8": {"uint32", "uint32"}, "byte": {"uint32", "uint32"},
	"float64": {"double", "float64"}, "float32": {"float", "float32"},
}

// protoSmallInts are the Go integers narrower than any proto scalar: a
// value from the wire that does not fit is refused (grpcNarrow), as
// encoding/json refuses it over HTTP, rather than truncated.
var protoSmallInts = map[string]bool{"int8": true, "int16": true, "uint8": true, "uint16": true, "byte": true}

const grpcMapHelp = "svcgen maps string, bool, integer and float fields (and named types of them), []byte, time.Time, time.Duration, struct types of this package, pointers to any of those but []byte (a nil pointer is an absent field), slices of those and map[string] of those (and named slice and map types of them)"

// Prepare implements Emitter.
func (e GRPCEmitter) Prepare(svc *Service, pkg *Package) (Transport, Problems) {
	var probs Problems
	for _, m := range svc.Methods {
		for _, a := range m.Annotations[e.Name()] {
			probs = append(probs, Problem{Pos: a.Pos, Method: m.Name,
				Msg: "//warren:grpc goes in the doc comment of the Service interface (it serves the whole service over gRPC), not on a method"})
		}
	}
	on := svc.Annotations[e.Name()]
	if len(on) == 0 {
		return nil, probs
	}
	for _, a := range on {
		if len(a.Args) > 0 {
			probs = append(probs, Problem{Pos: a.Pos, Msg: fmt.Sprintf("%q takes no arguments; write `//warren:grpc`", a.Text)})
		}
	}
	gs := &grpcService{Service: svc, PB: svc.Package + "pb", ProtoPackage: svc.Package + ".v1",
		GRPCName: TypeName(svc.Name) + "Service", Helpers: map[string]bool{}}
	mp := &grpcMapper{gs: gs, pkg: pkg, msgs: map[string]*protoMessage{}, imports: map[string]bool{}}
	for _, m := range svc.Methods {
		gm := &grpcMethod{Method: m, Retry: grpcRetry(m)}
		for i, t := range []string{m.Req, m.Resp} {
			var fields []string
			if i == 0 {
				for _, tr := range svc.transports {
					fields = append(fields, tr.RequestFields(m.Name)...)
				}
			}
			probs = append(probs, mp.message(m.Name, t, fields)...)
		}
		gs.Methods = append(gs.Methods, gm)
	}
	mp.nameReachers(svc.Methods, probs)
	gs.document(pkg)
	for _, msg := range gs.Messages {
		if msg.Name == gs.GRPCName {
			probs = append(probs, Problem{Pos: pkg.TypePos(msg.Name), Msg: fmt.Sprintf("type %s has the name of the gRPC service svcgen generates for %s; rename the type", msg.Name, svc.Name)})
		}
	}
	for imp := range mp.imports {
		gs.Imports = append(gs.Imports, imp)
	}
	slices.Sort(gs.Imports)
	// Field numbers follow the .proto svcgen wrote before (protonum.go).
	prev, err := pkg.Previous(gs.ProtoFile())
	if err != nil {
		probs = append(probs, Problem{Pos: position(path.Join(pkg.s.dir, gs.ProtoFile()), 0),
			Msg: fmt.Sprintf("cannot read the previous .proto, whose field numbers the new one keeps: %v", err)})
		return gs, probs
	}
	if prev == nil {
		p, note := gs.protoGone(pkg)
		if p != nil {
			return gs, append(probs, *p)
		}
		if note != "" {
			svc.notes = append(svc.notes, note)
		}
	}
	numbers := parseProtoNumbers(prev)
	used := map[string]bool{}
	for _, msg := range gs.Messages {
		used[msg.Name] = true
		for _, n := range msg.number(numbers[msg.Name]) {
			svc.notes = append(svc.notes, path.Join(pkg.s.dir, gs.ProtoFile())+": "+n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(numbers)) {
		if used[name] {
			continue
		}
		msg := &protoMessage{Name: name}
		msg.number(numbers[name]) // no fields: every number and name reserved
		if len(msg.Reserved) > 0 {
			gs.Retired = append(gs.Retired, msg)
		}
	}
	return gs, probs
}

// protoGone is the problem of a service that had a .proto, which holds
// its field numbers, and has none now: without it every field would be
// numbered afresh from 1, and a field moved in the struct would swap
// meaning with another on the wire for every caller and instance built
// from the committed .proto (report j53c 9). What shows the service had
// one: svcgen's grpc_gen.go or grpc_gen_test.go, a .pb.go protoc compiled
// from the .proto, or the user's own files using the gRPC side they
// generated — deleting every generated file, the habit of starting
// afresh, leaves those (report r54b G2). A new gRPC service has none of
// them, nor a directory (prev nil). gen --renumber numbers afresh on
// purpose, with a note; so does a service with nothing generated left and
// nothing that shows gRPC, as gen cannot tell whether callers of an
// earlier .proto exist.
func (gs *grpcService) protoGone(pkg *Package) (*Problem, string) {
	prev := pkg.s.prev
	if prev == nil {
		return nil, ""
	}
	dir := pkg.s.dir
	proto := path.Join(dir, gs.ProtoFile())
	var left []string
	for _, fn := range []string{GRPCEmitter{}.File(), GRPCEmitter{}.TestFile()} {
		if b, err := fs.ReadFile(prev, fn); err == nil && bytes.HasPrefix(b, []byte(generatedHeader)) {
			left = append(left, fn)
		}
	}
	pbs, _ := fs.Glob(prev, gs.PB+"/*.pb.go")
	left = append(left, pbs...)
	uses := gs.grpcUses(prev)
	afresh := fmt.Sprintf("every field was numbered afresh from 1, in struct order. Callers and instances built from an earlier %s (if this service served gRPC before) read fields by their old numbers, "+
		"so a field that moved now means another on the wire for them; while any still run, restore the file from version control (git checkout -- %s) and run gen again", gs.ProtoFile(), proto)
	if pkg.s.opt.Renumber {
		return nil, proto + ": --renumber: " + afresh
	}
	if len(left)+len(uses) == 0 {
		if generatedLeft(prev) {
			return nil, "" // an HTTP service given //warren:grpc: its first .proto
		}
		return nil, proto + ": no earlier .proto and no generated file of this service were found, so " + afresh
	}
	var had []string
	if len(left) > 0 {
		had = append(had, strings.Join(left, ", ")+" still there")
	}
	had = append(had, uses...)
	return &Problem{Pos: position(proto, 0), Msg: fmt.Sprintf(
		"this file is missing, but the service had it (%s), and it holds the service's protobuf field numbers: "+
			"numbered afresh, fields would swap meaning on the wire for callers built from the committed .proto; "+
			"restore it from version control (git checkout -- %s) and run gen again. "+
			"To number every field afresh on purpose (no caller of an old .proto left, or the service never had one), run gen --renumber",
		strings.Join(had, "; "), proto)}, ""
}

// grpcUses says where the user's own files of the service — its main,
// written once by `svcgen new --grpc`, and the package's Go files, which
// gen never rewrites — use what grpc_gen.go or NAMEpb/ declare.
func (gs *grpcService) grpcUses(prev fs.FS) []string {
	var out []string
	mainPath := path.Join("cmd", gs.Name, "main.go")
	if b, err := fs.ReadFile(prev, mainPath); err == nil {
		for _, fn := range []string{"NewTransports", "NewGRPCTransport", "NewGRPCClient"} {
			if bytes.Contains(b, []byte(gs.Package+"."+fn+"(")) {
				out = append(out, fmt.Sprintf("%s calls %s.%s", mainPath, gs.Package, fn))
				break
			}
		}
	}
	names, _ := fs.Glob(prev, "*.go")
	for _, fn := range names {
		b, err := fs.ReadFile(prev, fn)
		if err != nil || isGenerated(b) {
			continue
		}
		for _, use := range []string{"NewGRPCClient(", "NewGRPCTransport(", "NewGRPCServer(", "MakeGRPCClientEndpoints(", "/" + gs.PB + `"`} {
			if bytes.Contains(b, []byte(use)) {
				out = append(out, fmt.Sprintf("%s uses %s", fn, strings.Trim(use, `/"(`)))
				break
			}
		}
	}
	return out
}

// generatedLeft reports whether any Go file svcgen generated is in the
// service directory.
func generatedLeft(prev fs.FS) bool {
	for _, fn := range GeneratedFiles() {
		if b, err := fs.ReadFile(prev, fn); err == nil && bytes.HasPrefix(b, []byte(generatedHeader)) {
			return true
		}
	}
	return false
}

// Unwired implements MainWiring: a main serves gRPC through
// NewTransports (both transports, what `svcgen new --grpc` writes) or
// NewGRPCTransport (the gRPC half alone).
func (gs *grpcService) Unwired(mainPath string, main []byte) string {
	if bytes.Contains(main, []byte("NewTransports(")) || bytes.Contains(main, []byte("NewGRPCTransport(")) {
		return ""
	}
	p := gs.Package
	return fmt.Sprintf("%s has gRPC generated (//warren:grpc), but %s does not serve it (no %s.NewTransports), so it serves and registers HTTP only. "+
		"Have its build function return %s.NewTransports(d, %s.MakeEndpoints(svc), grpcSettings), with grpcSettings := grpcserver.DefaultSettings() "+
		"and bootstrap.WithSettings(&grpcSettings) among Main's options, as `svcgen new --grpc` writes it (Warren's docs/svcgen.md)",
		gs.Name, mainPath, p, p, p)
}

// grpcRetry is a method's retry class over gRPC, as over HTTP: GET routes
// and //warren:idempotent methods are idempotent, //warren:keyed ones
// carry one idempotency key.
func grpcRetry(m *Method) string {
	switch {
	case m.Keyed:
		return "grpcclient.Keyed()"
	case m.NoRetry:
		return ""
	case m.Idempotent:
		return "grpcclient.Idempotent()"
	}
	for _, a := range m.Annotations["http"] {
		if len(a.Args) > 0 && a.Args[0] == "GET" {
			return "grpcclient.Idempotent()"
		}
	}
	return ""
}

// grpcMapper turns Go struct types into messages.
type grpcMapper struct {
	gs      *grpcService
	pkg     *Package
	msgs    map[string]*protoMessage
	imports map[string]bool
	pending []string // struct types met in fields, not mapped yet
	helped  bool     // what svcgen maps was said in a problem
	current string   // the struct type whose fields are being mapped
	// refs holds the struct types each mapped type's fields reach: a
	// problem in a type is then named with every method that reaches it,
	// not only the first (report j45b).
	refs map[string][]string
	// formMethods are the grpcOwnFormMethods each type of the package
	// declares (ownForm).
	formMethods map[string][]string
}

// nameReachers sets the Method of each problem found in a message type to
// every method whose request or response reaches that type.
func (mp *grpcMapper) nameReachers(methods []*Method, probs Problems) {
	reachers := map[string][]string{}
	for _, m := range methods {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(t string) {
			if seen[t] {
				return
			}
			seen[t] = true
			reachers[t] = append(reachers[t], m.Name)
			for _, r := range mp.refs[t] {
				walk(r)
			}
		}
		walk(m.Req)
		walk(m.Resp)
	}
	for i, p := range probs {
		if ms := reachers[p.typ]; p.typ != "" && len(ms) > 1 {
			probs[i].Method = strings.Join(ms, ", ")
		}
	}
}

// message maps the struct type name (once) and every type it reaches.
// A type gen is about to append has the given string fields.
func (mp *grpcMapper) message(method, name string, appended []string) Problems {
	if _, ok := mp.msgs[name]; ok {
		return nil
	}
	msg := &protoMessage{Name: name}
	mp.msgs[name] = msg
	mp.gs.Messages = append(mp.gs.Messages, msg)
	s := mp.pkg.s
	spec, ok := s.types[name]
	if !ok { // appended by gen: empty, or with a transport's string fields
		for _, f := range appended {
			mp.addField(msg, exportedField(f), f, grpcConv{proto: "string", goType: "string", pbType: "string",
				to: func(x string) string { return x }, from: func(x string) string { return x }})
		}
		return nil
	}
	var probs Problems
	report := func(pos token.Pos, format string, args ...any) {
		probs = append(probs, Problem{Pos: s.fset.Position(pos), Method: method, Msg: fmt.Sprintf(format, args...), typ: name})
	}
	mp.current = name
	if !isASCIIIdent(name) {
		report(spec.Pos(), "type %s: a protobuf message name is ASCII letters, digits and _; rename the type", name)
		return probs
	}
	st, ok := s.underlying(spec.Type).(*ast.StructType)
	if !ok {
		report(spec.Pos(), "type %s is not a struct type, so it cannot be a gRPC message", name)
		return probs
	}
	// A request or response type itself (a field's type was refused in
	// conv, at the field).
	if why := mp.opaque(name, st); why != "" {
		report(spec.Pos(), "type %s cannot be a gRPC message: %s", name, why)
		return probs
	}
	file := s.fileOf(spec.Pos())
	seen := map[string]string{}
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 {
			report(f.Pos(), "field %s.%s is embedded; a gRPC message lists its fields, so list %s's fields in %s itself (or name the field)", name, exprString(f.Type), exprString(f.Type), name)
			continue
		}
		tag := jsonTag(f)
		for _, n := range f.Names {
			js, ok := jsonName(n, tag)
			if !ok {
				continue
			}
			pname := protoFieldName(js)
			if !isASCIIIdent(pname) {
				report(n.Pos(), "field %s.%s: its JSON name %q does not make a protobuf field name (ASCII letters, digits and _); change the json tag", name, n.Name, js)
				continue
			}
			if other, dup := seen[pname]; dup {
				report(n.Pos(), "fields %s.%s and %s.%s both become the protobuf field %s; change one's json tag", name, other, name, n.Name, pname)
				continue
			}
			seen[pname] = n.Name
			if pbFieldName(pname) == "ProtoReflect" {
				// protoc-gen-go renames clashes with the other message
				// methods (pbFieldNames) but not this one: its output would
				// not compile.
				report(n.Pos(), "field %s.%s: its protobuf field %s becomes the Go field ProtoReflect, the name of a method every generated message has; change the json tag", name, n.Name, pname)
				continue
			}
			c, why := mp.conv(method, f.Type, file, 0, name+"."+pname)
			if why != "" {
				help := "" // said once
				if !mp.helped {
					help, mp.helped = " ("+grpcMapHelp+")", true
				}
				report(n.Pos(), "field %s.%s has type %s, which svcgen cannot map to protobuf: %s%s", name, n.Name, exprString(f.Type), why, help)
				continue
			}
			mp.addField(msg, n.Name, pname, c)
		}
	}
	// Types reached from the fields are mapped as conv met them; their
	// problems are reported at their own fields.
	pending := mp.pending
	mp.pending = nil
	for _, t := range pending {
		probs = append(probs, mp.message(method, t, nil)...)
	}
	return probs
}

func (mp *grpcMapper) addField(msg *protoMessage, goName, pname string, c grpcConv) {
	pb := msg.pbFieldNames(pbFieldName(pname))
	f := &protoField{Type: c.proto, Name: pname, GoName: goName, PBName: pb,
		ToPB: c.toExpr("v." + goName), FromPB: c.fromExpr("m.Get" + pb + "()")}
	switch {
	case c.repeated:
		f.Type = "repeated " + f.Type
	case c.optional:
		// The getter of an optional field returns the value, zero when
		// absent: the field itself keeps nil apart (fromPB makes m
		// non-nil first).
		f.Type = "optional " + f.Type
		f.FromPB = c.fromExpr("m." + pb)
		msg.Optional = true
	}
	msg.Fields = append(msg.Fields, f)
}

// Proto is the field's line in the .proto: "repeated Item items = 3".
func (f *protoField) Proto() string { return fmt.Sprintf("%s %s = %d", f.Type, f.Name, f.Num) }

// pbFieldNames is the Go name protoc-gen-go gives the next field of msg,
// whose GoCamelCase name is name: protogen's makeNameUnique, which appends
// "_" while the name, or its getter Get+name, is taken by a field before
// it, a getter or a method of every message. Fields are named in .proto
// order, which is msg.Fields' order.
func (msg *protoMessage) pbFieldNames(name string) string {
	if msg.pbNames == nil {
		msg.pbNames = map[string]bool{}
		for _, m := range []string{"Reset", "String", "ProtoMessage", "Marshal", "Unmarshal", "ExtensionRangeArray", "ExtensionMap", "Descriptor"} {
			msg.pbNames[m] = true
		}
	}
	for msg.pbNames[name] || msg.pbNames["Get"+name] {
		name += "_"
	}
	msg.pbNames[name] = true
	msg.pbNames["Get"+name] = true
	return name
}

// conv maps one Go type expression (in file f); a non-empty why says why
// it cannot. field names the message field in errors of the generated
// conversions: "Item.count".
func (mp *grpcMapper) conv(method string, e ast.Expr, f *ast.File, depth int, field string) (grpcConv, string) {
	s := mp.pkg.s
	ident := func(x string) string { return x }
	// narrow converts from the wire's 32 bits to a smaller integer type,
	// refusing a value that does not fit.
	narrow := func(goType string) func(string) string {
		mp.gs.Helpers["narrow"] = true
		return func(x string) string { return fmt.Sprintf("grpcNarrow[%s](%s, %q)", goType, x, field) }
	}
	// An alias is the type it names (type Stamp = time.Time is
	// time.Time), read in the file that declares it.
	e, f = s.alias(e, f)
	switch t := e.(type) {
	case *ast.Ident:
		if _, local := s.types[t.Name]; !local {
			sc, ok := protoScalars[t.Name]
			if !ok {
				return grpcConv{}, fmt.Sprintf("%s has no protobuf counterpart", t.Name)
			}
			c := grpcConv{proto: sc[0], goType: t.Name, pbType: sc[1], to: ident, from: ident}
			if sc[1] != t.Name {
				c.to = func(x string) string { return sc[1] + "(" + x + ")" }
				c.from = func(x string) string { return t.Name + "(" + x + ")" }
			}
			if protoSmallInts[t.Name] {
				c.from = narrow(t.Name)
			}
			return c, ""
		}
		switch u := s.underlying(t).(type) {
		case *ast.StructType:
			if !ast.IsExported(t.Name) {
				return grpcConv{}, unexportedMessage(t.Name)
			}
			if why := mp.opaque(t.Name, u); why != "" {
				return grpcConv{}, why
			}
			mp.want(t.Name)
			return grpcConv{proto: t.Name, goType: t.Name, pbType: "*" + mp.gs.PB + "." + t.Name, toFn: "toPB" + t.Name, fromFn: "fromPB" + t.Name}, ""
		case *ast.Ident:
			sc, ok := protoScalars[u.Name]
			if !ok {
				return grpcConv{}, fmt.Sprintf("%s is a %s, which has no protobuf counterpart", t.Name, u.Name)
			}
			c := grpcConv{proto: sc[0], goType: t.Name, pbType: sc[1],
				to:   func(x string) string { return sc[1] + "(" + x + ")" },
				from: func(x string) string { return t.Name + "(" + x + ")" }}
			if protoSmallInts[u.Name] {
				c.from = narrow(t.Name)
			}
			return c, ""
		case *ast.SelectorExpr:
			if x, ok := u.X.(*ast.Ident); ok && (u.Sel.Name == "Time" || u.Sel.Name == "Duration") &&
				importName(s.fileOf(s.types[t.Name].Pos()), "time") == x.Name {
				return grpcConv{}, fmt.Sprintf("%s is a named %s type; use %s itself in the field", t.Name, exprString(u), exprString(u))
			}
			// "use json.RawMessage itself" would only be refused in turn.
			return grpcConv{}, fmt.Sprintf("%s is a named %s type, and protobuf carries no type of another package but time.Time and time.Duration; "+
				"give the field a type it carries ([]byte, string, map[string]string, a struct type of this package, …) and convert to %s in your code", t.Name, exprString(u), t.Name)
		default:
			// A named slice or map (type Labels map[string]string) is the
			// message field its underlying type is: the values are
			// assignable both ways, so the underlying type's conversions
			// apply as they are. A named []byte converts explicitly, as a
			// map's value needs it.
			c, why := mp.conv(method, u, s.fileOf(s.types[t.Name].Pos()), depth, field)
			if why != "" {
				return grpcConv{}, fmt.Sprintf("%s is a named %s type: %s", t.Name, exprString(u), why)
			}
			if c.proto == "bytes" {
				return grpcConv{proto: "bytes", goType: t.Name, pbType: "[]byte",
					to:   func(x string) string { return "[]byte(" + x + ")" },
					from: func(x string) string { return t.Name + "(" + x + ")" }}, ""
			}
			c.goType = t.Name
			return c, ""
		}
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && f != nil && importName(f, "time") == x.Name {
			switch t.Sel.Name {
			case "Time":
				mp.imports["google/protobuf/timestamp.proto"] = true
				mp.gs.NeedTime = true
				c := grpcConv{proto: "google.protobuf.Timestamp", goType: exprString(t), toFn: "grpctransport.TimeToPB", fromFn: "grpctransport.TimeFromPB"}
				if depth > 0 {
					// A field's zero time is the absent message, but an
					// element cannot be absent (a nil one would go out as
					// the empty Timestamp, 1970): it is sent as itself,
					// 0001-01-01, which TimeFromPB reads as the zero time.
					mp.gs.Helpers["timeElem"] = true
					c.toFn = "grpcTimeElemToPB"
				}
				return c, ""
			case "Duration":
				mp.imports["google/protobuf/duration.proto"] = true
				mp.gs.NeedTime = true
				return grpcConv{proto: "google.protobuf.Duration", goType: exprString(t), toFn: "grpctransport.DurationToPB", fromFn: "grpctransport.DurationFromPB"}, ""
			}
		}
		return grpcConv{}, "a type of another package (only time.Time and time.Duration are)"
	case *ast.IndexExpr, *ast.IndexListExpr:
		return grpcConv{}, fmt.Sprintf("%s is an instance of a generic type, and generic types are not mapped; declare a non-generic struct type with the fields %s has (type %s struct { … }) and use it", exprString(e), exprString(e), genericName(e))
	case *ast.StarExpr:
		if x, xf := s.alias(t.X, f); x != t.X {
			t, f = &ast.StarExpr{Star: t.Star, X: x}, xf
		}
		id, ok := t.X.(*ast.Ident)
		if ok {
			if st, isStruct := s.underlying(id).(*ast.StructType); isStruct && s.types[id.Name] != nil {
				if !ast.IsExported(id.Name) {
					return grpcConv{}, unexportedMessage(id.Name)
				}
				if why := mp.opaque(id.Name, st); why != "" {
					return grpcConv{}, why
				}
				mp.want(id.Name)
				mp.gs.Helpers["ptr"] = true
				c := grpcConv{proto: id.Name, goType: "*" + id.Name, pbType: "*" + mp.gs.PB + "." + id.Name,
					to:   func(x string) string { return "grpcPtrToPB(" + x + ", toPB" + id.Name + ")" },
					from: func(x string) string { return "grpcPtrFromPB(" + x + ", fromPB" + id.Name + ")" }}
				if depth > 0 {
					// A nil field is the absent message, but protobuf has
					// no nil element: refused rather than sent as an empty
					// message that would come back as a non-nil zero value.
					mp.gs.Helpers["ptrElem"] = true
					c.to = func(x string) string { return fmt.Sprintf("grpcPtrElemToPB(%s, toPB%s, %q)", x, id.Name, field) }
				}
				return c, ""
			}
		}
		return mp.optional(method, t, f, depth, field)
	case *ast.ArrayType:
		if t.Len != nil {
			return grpcConv{}, "arrays have no protobuf counterpart; use a slice"
		}
		if id, ok := t.Elt.(*ast.Ident); ok && (id.Name == "byte" || id.Name == "uint8") && s.types[id.Name] == nil {
			return grpcConv{proto: "bytes", goType: "[]byte", pbType: "[]byte", to: ident, from: ident}, ""
		}
		if depth > 0 {
			return grpcConv{}, "a slice inside a slice or map has no protobuf counterpart; wrap the inner one in a struct"
		}
		c, why := mp.conv(method, t.Elt, f, depth+1, field)
		if why != "" {
			return grpcConv{}, why
		}
		if c.proto == "bytes" {
			return grpcConv{}, "a slice of []byte; wrap the inner one in a struct"
		}
		if c.toFn == "" && c.to("x") == "x" && c.from("x") == "x" {
			return grpcConv{proto: c.proto, repeated: true, to: ident, from: ident}, ""
		}
		mp.gs.Helpers["slice"] = true
		return grpcConv{proto: c.proto, repeated: true,
			to:   func(x string) string { return "grpcSlice(" + x + ", " + c.toFunc() + ")" },
			from: func(x string) string { return "grpcSlice(" + x + ", " + c.fromFunc() + ")" }}, ""
	case *ast.MapType:
		if k, _ := s.alias(t.Key, f); !isIdent(k, "string") || s.types["string"] != nil {
			return grpcConv{}, "map keys must be string"
		}
		if depth > 0 {
			return grpcConv{}, "a map inside a slice or map has no protobuf counterpart; wrap the inner one in a struct"
		}
		c, why := mp.conv(method, t.Value, f, depth+1, field)
		if why != "" {
			return grpcConv{}, why
		}
		if c.proto == "bytes" && c.pbType == "" {
			return grpcConv{}, "unsupported map value"
		}
		proto := "map<string, " + c.proto + ">"
		if c.toFn == "" && c.to("x") == "x" && c.from("x") == "x" {
			return grpcConv{proto: proto, to: ident, from: ident}, ""
		}
		mp.gs.Helpers["map"] = true
		return grpcConv{proto: proto,
			to:   func(x string) string { return "grpcMap(" + x + ", " + c.toFunc() + ")" },
			from: func(x string) string { return "grpcMap(" + x + ", " + c.fromFunc() + ")" }}, ""
	case *ast.StructType:
		return grpcConv{}, "an anonymous struct; declare it as a named type"
	case *ast.InterfaceType:
		return grpcConv{}, "an interface has no fixed shape to describe"
	case *ast.ChanType, *ast.FuncType:
		return grpcConv{}, "channels and functions cannot travel"
	}
	return grpcConv{}, "it has no protobuf counterpart"
}

// genericName suggests a name for a non-generic type in place of the
// generic instance e: Page[Line] → LinePage.
func genericName(e ast.Expr) string {
	var x ast.Expr
	var args []ast.Expr
	switch t := e.(type) {
	case *ast.IndexExpr:
		x, args = t.X, []ast.Expr{t.Index}
	case *ast.IndexListExpr:
		x, args = t.X, t.Indices
	}
	name := ""
	for _, a := range args {
		if id, ok := a.(*ast.Ident); ok {
			name += TypeName(id.Name)
		}
	}
	return name + exprString(x)
}

// optional maps a pointer to a scalar, time.Time or time.Duration field:
// nil is the absent field, a pointer to zero is sent (proto3 optional
// for scalars; the well-known messages have presence of their own).
func (mp *grpcMapper) optional(method string, t *ast.StarExpr, f *ast.File, depth int, field string) (grpcConv, string) {
	if depth > 0 {
		return grpcConv{}, "a pointer inside a slice or map is mapped only to a struct type of this package (protobuf has no nil element; a nil one is refused); use the value type"
	}
	if _, double := t.X.(*ast.StarExpr); double {
		return grpcConv{}, "a pointer to a pointer has no protobuf counterpart"
	}
	inner, why := mp.conv(method, t.X, f, depth, field)
	if why != "" {
		return grpcConv{}, why
	}
	switch {
	case inner.proto == "google.protobuf.Timestamp":
		// The zero time is sent (as 0001-01-01, read back as the zero
		// time): only nil is absent.
		mp.gs.Helpers["ptr"], mp.gs.Helpers["timeElem"] = true, true
		return grpcConv{proto: inner.proto, goType: "*" + inner.goType,
			to:   func(x string) string { return "grpcPtrToPB(" + x + ", grpcTimeElemToPB)" },
			from: func(x string) string { return "grpcPtrFromPB(" + x + ", " + inner.fromFunc() + ")" }}, ""
	case inner.proto == "google.protobuf.Duration":
		mp.gs.Helpers["ptr"] = true
		return grpcConv{proto: inner.proto, goType: "*" + inner.goType,
			to:   func(x string) string { return "grpcPtrToPB(" + x + ", " + inner.toFunc() + ")" },
			from: func(x string) string { return "grpcPtrFromPB(" + x + ", " + inner.fromFunc() + ")" }}, ""
	case inner.pbType != "" && inner.proto != "bytes" && !inner.repeated && !strings.HasPrefix(inner.proto, "map<"):
		mp.gs.Helpers["opt"] = true
		return grpcConv{proto: inner.proto, optional: true, goType: "*" + inner.goType, pbType: "*" + inner.pbType,
			to:   func(x string) string { return "grpcOpt(" + x + ", " + inner.toFunc() + ")" },
			from: func(x string) string { return "grpcOpt(" + x + ", " + inner.fromFunc() + ")" }}, ""
	}
	return grpcConv{}, "pointers are mapped to scalars, time.Time, time.Duration and struct types of this package; use the value type"
}

// unexportedMessage is why an unexported struct type is no message:
// protoc-gen-go would export its name (bin → Bin), so grpc_gen.go would
// not find the message it wrote.
func unexportedMessage(name string) string {
	return fmt.Sprintf("%s is an unexported struct type; a protobuf message type is exported, so export it (%s)", name, TypeName(name))
}

// grpcOwnFormMethods are the methods by which a type gives itself a JSON
// or text form of its own, which encoding/json uses over HTTP and
// protobuf knows nothing of.
var grpcOwnFormMethods = []string{"MarshalJSON", "UnmarshalJSON", "MarshalText", "UnmarshalText"}

// opaque says why the struct type name (st, its struct) cannot be a
// message though it is a struct of this package: a message carries its
// exported fields, so a type whose state is unexported would arrive
// without it, silently (report j53c 10) — either it has a JSON or text
// form of its own (MarshalJSON, MarshalText, …: HTTP carries its state,
// gRPC would not), or it has fields but none exported (nothing of it
// would ever travel). A struct with no field at all (an empty request)
// and a named scalar with its own form (its value is all of its state,
// and protobuf carries it) are mapped.
func (mp *grpcMapper) opaque(name string, st *ast.StructType) string {
	var lost []string
	fields := 0
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 { // embedded: refused where the struct is mapped
			fields++
			continue
		}
		tag := jsonTag(f)
		for _, n := range f.Names {
			if n.Name == "_" { // padding, no state
				continue
			}
			fields++
			if _, ok := jsonName(n, tag); !ok {
				lost = append(lost, n.Name)
			}
		}
	}
	if method := mp.ownForm(name); method != "" && len(lost) > 0 {
		form := "JSON"
		if strings.HasSuffix(method, "Text") {
			form = "text"
		}
		return fmt.Sprintf("%s has its own %s form (%s), which protobuf cannot carry, and fields a message leaves out (%s: unexported or json:\"-\"), "+
			"so over gRPC they would never arrive while HTTP carries them through its own methods; give %s exported fields that hold its whole state "+
			"(gRPC carries those; HTTP still uses its methods), or give the field a type protobuf carries (int64, string, …) and convert to %s in your code",
			name, form, method, strings.Join(lost, ", "), name, name)
	}
	if fields > 0 && len(lost) == fields {
		return fmt.Sprintf("%s has no field a message carries (%s: unexported or json:\"-\"), so its value would never travel over gRPC; "+
			"export the fields that hold its state, or give the field a type protobuf carries and convert to %s in your code", name, strings.Join(lost, ", "), name)
	}
	return ""
}

// ownForm is the first of grpcOwnFormMethods the type name of this
// package (or a type it is an alias of) declares, on T or *T; "" for
// none.
func (mp *grpcMapper) ownForm(name string) string {
	s := mp.pkg.s
	if mp.formMethods == nil {
		mp.formMethods = map[string][]string{}
		for _, fn := range s.names {
			for _, d := range s.files[fn].Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 || !slices.Contains(grpcOwnFormMethods, fd.Name.Name) {
					continue
				}
				if recv := receiverName(fd.Recv.List[0].Type); recv != "" {
					mp.formMethods[recv] = append(mp.formMethods[recv], fd.Name.Name)
				}
			}
		}
	}
	for range 20 {
		for _, m := range grpcOwnFormMethods {
			if slices.Contains(mp.formMethods[name], m) {
				return m
			}
		}
		spec := s.types[name]
		if spec == nil || !spec.Assign.IsValid() {
			return ""
		}
		id, ok := spec.Type.(*ast.Ident) // type A = B: B's methods
		if !ok {
			return ""
		}
		name = id.Name
	}
	return ""
}

// receiverName is the type name of a method's receiver: T, *T, T[P].
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// want queues a struct type for mapping once the current one is done.
func (mp *grpcMapper) want(name string) {
	if mp.refs == nil {
		mp.refs = map[string][]string{}
	}
	if !slices.Contains(mp.refs[mp.current], name) {
		mp.refs[mp.current] = append(mp.refs[mp.current], name)
	}
	if _, ok := mp.msgs[name]; !ok && !slices.Contains(mp.pending, name) {
		mp.pending = append(mp.pending, name)
	}
}

// alias follows a type name of this package declared as an alias (type
// Stamp = time.Time) to the type expression it names, and the file that
// declares it (whose imports that expression uses); any other e is
// returned as it is.
func (s *source) alias(e ast.Expr, f *ast.File) (ast.Expr, *ast.File) {
	for range 20 {
		id, ok := e.(*ast.Ident)
		if !ok {
			return e, f
		}
		spec, ok := s.types[id.Name]
		if !ok || !spec.Assign.IsValid() {
			return e, f
		}
		e, f = spec.Type, s.fileOf(spec.Pos())
	}
	return e, f
}

// fileOf is the file that declares pos.
func (s *source) fileOf(pos token.Pos) *ast.File {
	for _, fn := range s.names {
		if f := s.files[fn]; f.FileStart <= pos && pos <= f.FileEnd {
			return f
		}
	}
	return nil
}

// protoFieldName is a JSON name in protobuf's snake case: userID → user_id.
func protoFieldName(js string) string {
	var b strings.Builder
	rs := []rune(js)
	for i, r := range rs {
		switch {
		case r == '-' || r == '.' || r == ' ':
			b.WriteByte('_')
		case r >= 'A' && r <= 'Z':
			if i > 0 && (rs[i-1] >= 'a' && rs[i-1] <= 'z' || rs[i-1] >= '0' && rs[i-1] <= '9' ||
				i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z' && rs[i-1] != '_' && rs[i-1] >= 'A' && rs[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pbFieldName is protoc-gen-go's GoCamelCase of a field name, the Go name
// it gives the field unless that clashes (pbFieldNames).
func pbFieldName(s string) string {
	lower := func(c byte) bool { return 'a' <= c && c <= 'z' }
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' && i == 0:
			b = append(b, 'X')
		case c == '_' && i+1 < len(s) && lower(s[i+1]):
		case '0' <= c && c <= '9':
			b = append(b, c)
		default:
			if lower(c) {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			for ; i+1 < len(s) && lower(s[i+1]); i++ {
				b = append(b, s[i+1])
			}
		}
	}
	return string(b)
}

func isASCIIIdent(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ProtoFile is where the .proto goes, relative to the service directory:
// userpb/user.proto.
func (gs *grpcService) ProtoFile() string { return path.Join(gs.PB, gs.Package+".proto") }

// GoPackage is the go_package option of the .proto.
func (gs *grpcService) GoPackage() string {
	return gs.Module + "/services/" + gs.Name + "/" + gs.PB + ";" + gs.PB
}

// Declares implements Transport.
func (gs *grpcService) Declares() []string {
	names := []string{"NewTransports", "NewGRPCServer", "NewGRPCTransport", "MakeGRPCClientEndpoints", "NewGRPCClient", "GRPCServiceName",
		"grpcServer", "grpcConvert", "grpcConvError", "grpcSlice", "grpcMap", "grpcPtrToPB", "grpcPtrFromPB", "grpcPtrElemToPB",
		"grpcNarrow", "grpcOpt", "grpcTimeElemToPB", gs.PB}
	for _, m := range gs.Messages {
		names = append(names, "toPB"+m.Name, "fromPB"+m.Name)
	}
	return names
}

// Route implements Transport.
func (gs *grpcService) Route(method string) string {
	return "/" + gs.ProtoPackage + "." + gs.GRPCName + "/" + method
}

// RequestFields implements Transport: gRPC needs none.
func (gs *grpcService) RequestFields(string) []string { return nil }

// Client implements Transport.
func (gs *grpcService) Client() ClientTransport {
	return ClientTransport{Name: "gRPC", Endpoints: "MakeGRPCClientEndpoints"}
}

// Render implements Transport.
func (gs *grpcService) Render() ([]byte, error) {
	return execute(grpcTmpl, "grpc_gen.go.tmpl", gs)
}

// RenderTest implements TestRenderer.
func (gs *grpcService) RenderTest() ([]byte, error) {
	return execute(grpcTmpl, "grpc_gen_test.go.tmpl", gs)
}

// Extra implements ExtraFiles: the .proto, which protoc compiles into
// the same directory.
func (gs *grpcService) Extra() (map[string][]byte, error) {
	var b strings.Builder
	if err := grpcTmpl.ExecuteTemplate(&b, "service.proto.tmpl", gs); err != nil {
		return nil, fmt.Errorf("svcgen: template service.proto.tmpl: %w", err)
	}
	return map[string][]byte{gs.ProtoFile(): []byte(b.String())}, nil
}
