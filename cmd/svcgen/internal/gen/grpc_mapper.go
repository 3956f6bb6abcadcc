package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"strings"
)

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
