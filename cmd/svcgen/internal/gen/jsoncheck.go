package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"strings"
)

// jsonChecker finds the fields of an HTTP service's request and response
// types that encoding/json can never carry: channels, functions, complex
// numbers, unsafe.Pointer and maps whose key is neither a string, an
// integer nor an encoding.TextMarshaler. Every call of a method that
// reaches one fails at run time (json: unsupported type), even with the
// field zero, so svcgen refuses them as it refuses what protobuf cannot
// carry (report j53c 6). A type of this package with its own MarshalJSON,
// UnmarshalJSON, MarshalText or UnmarshalText is accepted whatever it
// holds, unless it writes itself only through a pointer where a value is
// sent or carries nothing at all (jsonvalue.go); a type of another
// package is accepted too (svcgen reads source, not types, and cannot
// see its methods), but for the few of the standard library jsonvalue.go
// names.
type jsonChecker struct {
	s *source
	// Each struct type of this package is checked once: its problems
	// (Problem.typ names it), those it has only when reached as a value
	// encoding/json cannot address (byValue), and the struct types its
	// fields reach.
	checked map[string]bool
	probs   map[string]Problems
	byValue map[string]Problems
	refs    map[string][]jsonRef
	methods map[string]map[string]jsonMethod // of jsonMethodNames, by type
}

// jsonMethod is where a method of jsonMethodNames is declared, and on
// which receiver: encoding/json calls a map key's MarshalText on the
// key's value only, and any MarshalJSON or MarshalText on a pointer only
// where it can take the value's address.
type jsonMethod struct {
	pos  token.Pos
	ptr  bool   // func (*T) M
	recv string // the receiver's name, for the message's example
}

// jsonMethodNames are the methods by which a type encodes itself: with
// one, what it holds does not matter to encoding/json.
var jsonMethodNames = []string{"MarshalJSON", "UnmarshalJSON", "MarshalText", "UnmarshalText"}

// checkJSON checks every method's response type and, when it travels as
// a JSON body (not GET or DELETE, whose fields bind checks one by one),
// its request type. A problem in a type several methods reach names them
// all, once.
func (hs *httpService) checkJSON(pkg *Package) Problems {
	c := &jsonChecker{s: pkg.s, checked: map[string]bool{}, probs: map[string]Problems{}, byValue: map[string]Problems{}, refs: map[string][]jsonRef{}}
	var out Problems
	at := map[string]int{} // a problem's place in out, by type and text
	add := func(m *httpMethod, p Problem) {
		key := p.typ + "\x00" + p.Pos.String() + "\x00" + p.Msg
		if i, ok := at[key]; ok {
			if !slices.Contains(strings.Split(out[i].Method, ", "), m.Name) {
				out[i].Method += ", " + m.Name
			}
			return
		}
		p.Method = m.Name
		at[key] = len(out)
		out = append(out, p)
	}
	for _, m := range hs.Methods {
		roots := map[string]string{m.Resp: "response"}
		if !m.Query {
			roots[m.Req] = "request"
		}
		// seen is by type and by whether encoding/json can address it
		// there: a type reached both ways is checked both ways.
		seen := map[jsonRef]bool{}
		var walk func(name string, addr bool)
		walk = func(name string, addr bool) {
			if seen[jsonRef{name, addrOf(addr)}] {
				return
			}
			seen[jsonRef{name, addrOf(addr)}] = true
			c.check(name)
			for _, p := range c.probs[name] {
				add(m, p)
			}
			if !addr {
				for _, p := range c.byValue[name] {
					add(m, p)
				}
			}
			for _, r := range c.refs[name] {
				walk(r.to, r.mode.addressable(addr))
			}
		}
		for _, r := range []string{m.Resp, m.Req} {
			if _, ok := c.s.types[r]; !ok || roots[r] == "" {
				continue
			}
			// The generated code hands encoding/json the request and
			// the response as values (in an any), never addressable.
			// Said at the type, naming every method it is the request
			// or response of.
			if why := c.rootWhy(roots[r], r); why != "" {
				add(m, Problem{Pos: c.s.fset.Position(c.s.types[r].Pos()), typ: r, Msg: why})
			}
			walk(r, false)
		}
	}
	return out
}

// hasJSONMethods reports whether the type of this package named name (or
// a pointer to it) has one of the methods given (all of jsonMethodNames
// when none is).
func (c *jsonChecker) hasJSONMethods(name string, which ...string) bool {
	if c.methods == nil {
		c.methods = map[string]map[string]jsonMethod{}
		for _, fn := range c.s.names {
			for _, d := range c.s.files[fn].Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 || !slices.Contains(jsonMethodNames, fd.Name.Name) {
					continue
				}
				if id := embeddedLocal(fd.Recv.List[0].Type); id != "" { // T, *T, T[P]
					if c.methods[id] == nil {
						c.methods[id] = map[string]jsonMethod{}
					}
					_, ptr := fd.Recv.List[0].Type.(*ast.StarExpr)
					m := jsonMethod{pos: fd.Name.Pos(), ptr: ptr}
					if ns := fd.Recv.List[0].Names; len(ns) == 1 && ns[0].Name != "_" {
						m.recv = ns[0].Name
					}
					c.methods[id][fd.Name.Name] = m
				}
			}
		}
	}
	if len(which) == 0 {
		which = jsonMethodNames
	}
	for _, m := range which {
		if _, ok := c.methods[name][m]; ok {
			return true
		}
	}
	return false
}

// check finds the problems of the struct type name's fields (a type that
// is not a struct is checked where a field uses it).
func (c *jsonChecker) check(name string) {
	if c.checked[name] {
		return
	}
	c.checked[name] = true
	spec := c.s.types[name]
	if spec == nil {
		return
	}
	st, ok := c.s.underlying(spec.Type).(*ast.StructType)
	if !ok {
		return
	}
	// Its fields do not travel when it gets a marshal method from a type
	// it embeds, even beside methods of its own that leave one direction
	// to it: said at the embedded field.
	if pos, why := c.swallowWhy(name, st, c.s.fileOf(spec.Pos())); why != "" {
		c.probs[name] = append(c.probs[name], Problem{Pos: c.s.fset.Position(pos), typ: name, Msg: why})
		return
	}
	if c.hasJSONMethods(name) || c.promotesMethods(st) {
		return
	}
	for _, fl := range st.Fields.List {
		if why := c.unexportedPtrWhy(name, fl); why != "" {
			c.probs[name] = append(c.probs[name], Problem{Pos: c.s.fset.Position(fl.Type.Pos()), typ: name, Msg: why})
		}
	}
	c.fields(name, st, c.s.fileOf(spec.Pos()), map[string]bool{}, inherit, func(pos token.Pos, field string, typ ast.Expr, why jsonWhy) {
		p := Problem{Pos: c.s.fset.Position(pos), typ: name,
			Msg: fmt.Sprintf("field %s.%s has type %s, which JSON cannot carry: %s", name, field, exprString(typ), why.msg)}
		if why.byValue {
			c.byValue[name] = append(c.byValue[name], p)
		} else {
			c.probs[name] = append(c.probs[name], p)
		}
	})
}

// fields checks the fields of st, a struct type owner reaches, as
// encoding/json sees them: an untagged embedded struct type of this
// package has its fields promoted (checked in that type), any other
// embedded type is a field named after it; unexported and `json:"-"`
// fields do not travel. mode is whether encoding/json can address st's
// fields. report is called for each field JSON cannot carry.
func (c *jsonChecker) fields(owner string, st *ast.StructType, f *ast.File, through map[string]bool, mode addrMode, report func(pos token.Pos, field string, typ ast.Expr, why jsonWhy)) {
	for _, fl := range st.Fields.List {
		tag := jsonTag(fl)
		names := fl.Names
		if len(names) == 0 {
			id := embeddedLocal(fl.Type)
			js, _, _ := strings.Cut(tag, ",")
			if _, ok := c.s.underlying(ast.NewIdent(id)).(*ast.StructType); ok && js == "" {
				m := mode
				if _, ptr := fl.Type.(*ast.StarExpr); ptr {
					m = addressable
				}
				c.ref(owner, id, m)
				continue
			}
			names = []*ast.Ident{{NamePos: fl.Type.Pos(), Name: id}}
		}
		for _, n := range names {
			if _, ok := jsonName(n, tag); !ok {
				continue
			}
			if why := c.why(owner, fl.Type, f, through, mode); why.msg != "" {
				report(n.Pos(), n.Name, fl.Type, why)
			}
		}
	}
}

// unexportedPtrWhy is why the field fl of the struct type owner, when it
// embeds a pointer to a struct type under an unexported name (*inner), is
// one encoding/json writes but cannot read back: decoding a field it
// promotes into a value whose pointer is nil (every value decoded into)
// needs to allocate the pointer, which is unexported, and fails with
// "json: cannot set embedded pointer to unexported struct" (decode.go,
// golang.org/issue/21357); with a json tag the pointer is a field of its
// own, and setting it panics (reflect: Set using value obtained using
// unexported field). Untagged with no field JSON writes, nothing is ever
// decoded into it, and it is accepted.
func (c *jsonChecker) unexportedPtrWhy(owner string, fl *ast.Field) string {
	star, ok := fl.Type.(*ast.StarExpr)
	if len(fl.Names) > 0 || !ok {
		return ""
	}
	id := embeddedLocal(star)
	inner, ok := c.s.underlying(ast.NewIdent(id)).(*ast.StructType)
	if !ok || ast.IsExported(id) || c.s.types[id] == nil {
		return ""
	}
	tag := jsonTag(fl)
	js, _, _ := strings.Cut(tag, ",")
	fix := fmt.Sprintf("embed the value (%s instead of *%s), export the type (or embed an exported alias of it: type %s = %s), or name the field (%s *%s `json:\"%s\"`)",
		id, id, TypeName(id), id, TypeName(id), id, strings.ToLower(id[:1])+id[1:])
	switch {
	case js == "-" && !strings.HasPrefix(tag, "-,"):
		return ""
	case js != "":
		return fmt.Sprintf("field %s.%s embeds *%s, a pointer to a struct type under an unexported name, with a json tag: encoding/json writes it as the field %q, "+
			"but decoding into it panics (reflect: Set using value obtained using unexported field), so every call fails; %s", owner, id, id, js, fix)
	}
	if carried, _ := c.carries(inner, 0); !carried {
		return ""
	}
	return fmt.Sprintf("field %s.%s embeds *%s, a pointer to a struct type under an unexported name: encoding/json writes the fields it promotes, "+
		"but reading them back needs to allocate the nil pointer of the value it decodes into, which it cannot set, so every call that sends them fails "+
		"(json: cannot set embedded pointer to unexported struct); %s", owner, id, id, fix)
}

// promotesMethods reports whether st embeds a type whose methods may make
// st encode itself: one of this package with a JSON or text method, or
// any type of another package (time.Time's MarshalJSON, say).
func (c *jsonChecker) promotesMethods(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if len(f.Names) > 0 {
			continue
		}
		if id := embeddedLocal(f.Type); id == "" || c.hasJSONMethods(id) {
			return true
		}
	}
	return false
}

// embeddedLocal is the type name of an embedded field T or *T of this
// package ("" for another package's: pkg.T).
func embeddedLocal(e ast.Expr) string {
	if st, ok := e.(*ast.StarExpr); ok {
		e = st.X
	}
	switch t := e.(type) {
	case *ast.IndexExpr:
		e = t.X
	case *ast.IndexListExpr:
		e = t.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func (c *jsonChecker) ref(from, to string, mode addrMode) {
	if r := (jsonRef{to, mode}); !slices.Contains(c.refs[from], r) {
		c.refs[from] = append(c.refs[from], r)
	}
}

// why says why encoding/json cannot carry a value of type e (in file f),
// or "", and whether only where it cannot address it (mode inherit: when
// owner is reached as a value). A struct type of this package it reaches
// is checked on its own (its problems are at its own fields); a named
// type of another kind is looked through, as encoding/json does.
func (c *jsonChecker) why(owner string, e ast.Expr, f *ast.File, through map[string]bool, mode addrMode) jsonWhy {
	s := c.s
	switch t := e.(type) {
	case *ast.ParenExpr:
		return c.why(owner, t.X, f, through, mode)
	case *ast.Ident:
		spec, local := s.types[t.Name]
		if !local {
			if t.Name == "complex64" || t.Name == "complex128" {
				return jsonWhy{msg: "encoding/json has no complex numbers; send the real and imaginary parts as two float64 fields"}
			}
			return jsonWhy{} // the other predeclared types, or a type parameter
		}
		if spec.Assign.IsValid() { // an alias has its target's methods
			return c.why(owner, spec.Type, c.s.fileOf(spec.Pos()), through, mode)
		}
		if through[t.Name] {
			return jsonWhy{}
		}
		if st, ok := s.underlying(t).(*ast.StructType); ok {
			if _, why := c.swallowWhy(t.Name, st, c.s.fileOf(st.Pos())); why != "" {
				c.ref(owner, t.Name, mode) // said at its embedded field
				return jsonWhy{}
			}
		}
		if enc, ok := c.encoder(t.Name); ok {
			return c.ptrWhy(t.Name, enc, mode)
		}
		if st, ok := s.underlying(t).(*ast.StructType); ok {
			if why := c.emptyWhy(t.Name, st); why != "" {
				return jsonWhy{msg: why}
			}
			c.ref(owner, t.Name, mode)
			return jsonWhy{}
		}
		if c.hasJSONMethods(t.Name) {
			return jsonWhy{}
		}
		if sel, ok := spec.Type.(*ast.SelectorExpr); ok { // type Stamp time.Time
			return jsonWhy{msg: c.foreignEmptyWhy(t.Name, sel, c.s.fileOf(spec.Pos()))}
		}
		through[t.Name] = true // a type that holds itself: []L
		defer delete(through, t.Name)
		if why := c.why(owner, spec.Type, c.s.fileOf(spec.Pos()), through, mode); why.msg != "" {
			why.msg = fmt.Sprintf("%s is %s; %s", t.Name, exprString(spec.Type), why.msg)
			return why
		}
		return jsonWhy{}
	case *ast.StarExpr:
		return c.why(owner, t.X, f, through, addressable)
	case *ast.ArrayType:
		if t.Len == nil { // a slice's elements are addressable; an array's are as it is
			mode = addressable
		}
		return c.why(owner, t.Elt, f, through, mode)
	case *ast.MapType:
		if why := c.keyWhy(t.Key); why != "" {
			return jsonWhy{msg: why}
		}
		return c.why(owner, t.Value, f, through, unaddressable)
	case *ast.ChanType, *ast.FuncType:
		return jsonWhy{msg: "encoding/json cannot encode channels or functions (json: unsupported type); leave it out of the type, or tag it `json:\"-\"`"}
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && f != nil && t.Sel.Name == "Pointer" && importName(f, "unsafe") == x.Name {
			return jsonWhy{msg: "encoding/json cannot encode unsafe.Pointer"}
		}
		return c.foreignPtrWhy(t, f, mode) // else its methods are out of sight
	case *ast.StructType:
		if _, why := c.swallowWhy(exprString(t), t, f); why != "" {
			return jsonWhy{msg: why}
		}
		if enc, ok := c.structEncoder(t, 0); ok {
			return c.ptrWhy(exprString(t), enc, mode)
		}
		if c.promotesMethods(t) {
			return jsonWhy{}
		}
		if why := c.emptyWhy(exprString(t), t); why != "" {
			return jsonWhy{msg: why}
		}
		var first jsonWhy
		c.fields(owner, t, f, through, mode, func(_ token.Pos, field string, typ ast.Expr, why jsonWhy) {
			if first.msg == "" {
				first = why
				first.msg = fmt.Sprintf("its field %s has type %s; %s", field, exprString(typ), why.msg)
			}
		})
		return first
	}
	return jsonWhy{} // interfaces (whatever they hold at run time), generic instances
}

// keyWhy says why encoding/json cannot both write and read back a map
// key of type k, or "". A key of a string or integer kind travels as
// itself; any other only through MarshalText, which encoding/json calls
// on the key's value, so one with a pointer receiver is not used and
// every call fails, even with the map nil (report r54b G1), and back
// through UnmarshalText on a pointer to the key. Another package's type
// is given the benefit of the doubt (its methods are out of sight).
func (c *jsonChecker) keyWhy(k ast.Expr) string {
	s := c.s
	none := fmt.Sprintf("a map key must be a string, an integer or an encoding.TextMarshaler, and %s is none; key the map by a string or an integer, or give the key type MarshalText and UnmarshalText", exprString(k))
	if _, ok := k.(*ast.StarExpr); ok {
		// Reading one back needs UnmarshalText on a pointer to a
		// pointer, which Go does not allow.
		return fmt.Sprintf("encoding/json can write a pointer map key (through MarshalText) but never read one back, so every call that sends the map non-nil fails; key the map by %s itself, with MarshalText on the value and UnmarshalText on the pointer", exprString(k.(*ast.StarExpr).X))
	}
	for range 20 {
		switch t := k.(type) {
		case *ast.ParenExpr:
			k = t.X
			continue
		case *ast.SelectorExpr, *ast.IndexExpr, *ast.IndexListExpr:
			return ""
		case *ast.Ident:
			spec, local := s.types[t.Name]
			if !local {
				if jsonKeyKinds[t.Name] {
					return ""
				}
				return none
			}
			if spec.Assign.IsValid() { // an alias: the methods are its target's
				k = spec.Type
				continue
			}
			return c.namedKeyWhy(t.Name, spec, none)
		}
		return none
	}
	return none
}

// namedKeyWhy is keyWhy for a type name of this package (not an alias).
func (c *jsonChecker) namedKeyWhy(name string, spec *ast.TypeSpec, none string) string {
	switch u := c.s.underlying(spec.Type).(type) {
	case *ast.Ident:
		if jsonKeyKinds[u.Name] {
			return "" // written as itself, whatever its methods
		}
	case *ast.SelectorExpr:
		if !c.hasJSONMethods(name, "MarshalText", "UnmarshalText") {
			return "" // another package's kind: out of sight
		}
	case *ast.StructType:
		if c.promotesMethods(u) {
			return ""
		}
	}
	m, marshal := c.methods[name]["MarshalText"]
	_, unmarshal := c.methods[name]["UnmarshalText"]
	switch {
	case !marshal && !unmarshal:
		return none
	case !marshal:
		return fmt.Sprintf("%s has UnmarshalText but no MarshalText, so encoding/json cannot write it as a map key; give it one with a value receiver: func (k %s) MarshalText() ([]byte, error)", name, name)
	case m.ptr:
		at := c.s.fset.Position(m.pos)
		return fmt.Sprintf("%s's MarshalText has a pointer receiver (%s), and encoding/json calls a map key's MarshalText only on the key's value, so it cannot write this map at all (json: unsupported type), even nil; "+
			"give MarshalText a value receiver: func (k %s) MarshalText() ([]byte, error)", name, fmt.Sprintf("%s:%d", at.Filename, at.Line), name)
	case !unmarshal:
		return fmt.Sprintf("%s has MarshalText but no UnmarshalText, so encoding/json can write this map but not read it back; give *%s an UnmarshalText([]byte) error", name, name)
	}
	return ""
}

// jsonKeyKinds are the predeclared types encoding/json takes as map keys.
var jsonKeyKinds = map[string]bool{
	"string": true, "int": true, "int8": true, "int16": true, "int32": true, "int64": true, "rune": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true, "uintptr": true, "byte": true,
}
