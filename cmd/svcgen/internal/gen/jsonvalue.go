package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Two ways a value is lost over JSON without an error, which the JSON
// check refuses beside what encoding/json cannot carry at all (jsoncheck.go):
//
//   - a MarshalJSON (or, without one, MarshalText) with a pointer
//     receiver, on a value encoding/json cannot address: it calls such a
//     method only through an addressable value, and the generated code
//     hands it requests and responses as values, so a field of type Money
//     (not *Money) goes out as Money's fields, {} when they are unexported,
//     while UnmarshalJSON on the pointer still reads it: it arrives zero;
//   - a struct type with state but no field encoding/json writes and no
//     MarshalJSON or MarshalText (struct{ cents int64 }, type Stamp
//     time.Time, which does not get time.Time's methods): it goes out as
//     {} and arrives zero.

// addrMode is whether encoding/json can take the address of a value, as
// reflect decides it: a pointer's target and a slice's element can be, a
// map's value cannot, and a struct's field or an array's element can
// when the struct or array can be (inherit).
type addrMode uint8

const (
	inherit addrMode = iota
	addressable
	unaddressable
)

func addrOf(addr bool) addrMode {
	if addr {
		return addressable
	}
	return unaddressable
}

// addressable is whether a value of mode m is addressable inside one
// that is (parent).
func (m addrMode) addressable(parent bool) bool {
	if m == inherit {
		return parent
	}
	return m == addressable
}

// jsonRef is a struct type of this package a type's fields reach, and
// how.
type jsonRef struct {
	to   string
	mode addrMode
}

// jsonWhy is why a field's type cannot travel; byValue: only where its
// struct is reached as a value encoding/json cannot address.
type jsonWhy struct {
	msg     string
	byValue bool
}

// jsonEncoder is the method encoding/json writes a type with, and the
// type that declares it (the type itself, or one it embeds).
type jsonEncoder struct {
	jsonMethod
	name, owner string
}

// encoder is the method encoding/json writes the type name of this
// package with, through a pointer or not: its own MarshalJSON, else its
// MarshalText, else one its struct promotes.
func (c *jsonChecker) encoder(name string) (jsonEncoder, bool) {
	return c.encoderAt(name, 0)
}

func (c *jsonChecker) encoderAt(name string, depth int) (jsonEncoder, bool) {
	c.hasJSONMethods(name) // loads c.methods
	for _, m := range []string{"MarshalJSON", "MarshalText"} {
		if jm, ok := c.methods[name][m]; ok {
			return jsonEncoder{jm, m, name}, true
		}
	}
	if st, ok := c.s.underlying(ast.NewIdent(name)).(*ast.StructType); ok {
		return c.structEncoder(st, depth+1)
	}
	return jsonEncoder{}, false
}

// structEncoder is the marshal method st promotes from a type of this
// package it embeds: on a pointer receiver unless embedded as a pointer.
// (Another package's are out of sight.)
func (c *jsonChecker) structEncoder(st *ast.StructType, depth int) (jsonEncoder, bool) {
	if depth > 10 { // a cycle of embedded pointers
		return jsonEncoder{}, false
	}
	// Two embedded types with the method at one depth: Go promotes
	// neither, and encoding/json writes st's fields.
	promos := c.promoted(st, c.s.fileOf(st.Pos()))
	if _, ok := promos["MarshalJSON"]; !ok {
		if _, ok := promos["MarshalText"]; !ok {
			return jsonEncoder{}, false
		}
	}
	for _, f := range st.Fields.List {
		if len(f.Names) > 0 {
			continue
		}
		id := embeddedLocal(f.Type)
		if _, local := c.s.types[id]; !local {
			continue
		}
		if enc, ok := c.encoderAt(id, depth); ok {
			if _, ptr := f.Type.(*ast.StarExpr); ptr {
				enc.ptr = false // in the value's method set
			}
			return enc, true
		}
	}
	return jsonEncoder{}, false
}

// ptrWhy is why the type name, written by enc, is not written as itself
// where its mode says: enc has a pointer receiver, and the value cannot be
// addressed there.
func (c *jsonChecker) ptrWhy(name string, enc jsonEncoder, mode addrMode) jsonWhy {
	if !enc.ptr || mode == addressable {
		return jsonWhy{}
	}
	return jsonWhy{msg: c.ptrMsg(name, enc, "a "+name+" here is not (in a value request or response, an array, a map's value)") + ", or use *" + name + " in its place", byValue: mode == inherit}
}

// ptrMsg says that enc, name's marshal method, is skipped where encoding/json
// cannot address name's value (where says which).
func (c *jsonChecker) ptrMsg(name string, enc jsonEncoder, where string) string {
	at := c.s.fset.Position(enc.pos)
	whose := name + "'s"
	if enc.owner != name {
		whose = fmt.Sprintf("%s's (promoted from %s)", name, enc.owner)
	}
	also := ""
	if enc.name == "MarshalText" {
		also = " (it has no MarshalJSON)"
	}
	recv := enc.recv
	if recv == "" {
		recv = string(unicode.ToLower(rune(enc.owner[0])))
	}
	return fmt.Sprintf("%s %s%s has a pointer receiver (%s:%d), and encoding/json calls it only on a value it can address, which %s, so it is skipped: "+
		"the value goes out as its fields ({} when they are unexported) and arrives zero, without an error; "+
		"give %s a value receiver: func (%s %s) %s() ([]byte, error)",
		whose, enc.name, also, at.Filename, at.Line, where, enc.name, recv, enc.owner, enc.name)
}

// rootWhy is why the request or response type name (role) would not
// travel: encoding/json is handed it as a value.
func (c *jsonChecker) rootWhy(role, name string) string {
	if st, ok := c.s.underlying(ast.NewIdent(name)).(*ast.StructType); ok {
		if _, why := c.swallowWhy(name, st, c.s.fileOf(st.Pos())); why != "" {
			return "" // said at its embedded field
		}
	}
	if enc, ok := c.encoder(name); ok {
		if !enc.ptr {
			return ""
		}
		return fmt.Sprintf("%s type %s: %s", role, name, c.ptrMsg(name, enc, "the "+role+" is not (the generated code encodes it as a value)"))
	}
	if st, ok := c.s.underlying(ast.NewIdent(name)).(*ast.StructType); ok {
		if why := c.emptyWhy(name, st); why != "" {
			return fmt.Sprintf("%s type %s cannot travel as JSON: %s", role, name, why)
		}
	}
	return ""
}

// emptyWhy is why the struct type name (st, without a marshal method)
// would go out as {}: it holds state in fields encoding/json does not
// write, and none it does. A struct with no field, or only `json:"-"`
// ones (left out on purpose), has nothing to lose.
func (c *jsonChecker) emptyWhy(name string, st *ast.StructType) string {
	carried, lost := c.carries(st, 0)
	if carried || len(lost) == 0 {
		return ""
	}
	return fmt.Sprintf("%s has no field encoding/json writes (%s: unexported) and no MarshalJSON or MarshalText, so it goes out as {} and arrives zero, without an error; "+
		"export the fields that hold its state, or give it MarshalJSON (with a value receiver) and UnmarshalJSON", name, strings.Join(lost, ", "))
}

// carries reports whether encoding/json writes a field of st, and which
// fields holding state it leaves out. An embedded struct type of this
// package has its fields promoted, even unexported; another package's
// embedded type is given the benefit of the doubt.
func (c *jsonChecker) carries(st *ast.StructType, depth int) (carried bool, lost []string) {
	for _, f := range st.Fields.List {
		tag := jsonTag(f)
		js, _, _ := strings.Cut(tag, ",")
		skipped := js == "-" && !strings.HasPrefix(tag, "-,")
		if len(f.Names) == 0 {
			id := embeddedLocal(f.Type)
			if _, local := c.s.types[id]; !local {
				carried = true
				continue
			}
			if inner, ok := c.s.underlying(ast.NewIdent(id)).(*ast.StructType); ok && js == "" && depth < 10 {
				in, l := c.carries(inner, depth+1)
				carried = carried || in
				lost = append(lost, l...)
				continue
			}
			switch {
			case skipped:
			case ast.IsExported(id):
				carried = true
			default:
				lost = append(lost, id)
			}
			continue
		}
		for _, n := range f.Names {
			if _, ok := jsonName(n, tag); ok {
				carried = true
			} else if n.Name != "_" && !skipped {
				lost = append(lost, n.Name)
			}
		}
	}
	return carried, lost
}

// foreignStateless are types of the standard library that hold their
// state in unexported fields and travel only through the method named: a
// type declared over one (type Stamp time.Time) does not get the method
// and goes out as {}.
var foreignStateless = map[string]map[string]string{
	"time":      {"Time": "MarshalJSON"},
	"net/netip": {"Addr": "MarshalText", "AddrPort": "MarshalText", "Prefix": "MarshalText"},
	"math/big":  {"Int": "MarshalJSON", "Float": "MarshalText", "Rat": "MarshalText"},
}

// foreignPtr are types of the standard library whose marshal method has a
// pointer receiver: as a value encoding/json cannot address, they go out
// as {}.
var foreignPtr = map[string]map[string]string{
	"math/big": {"Int": "MarshalJSON", "Float": "MarshalText", "Rat": "MarshalText"},
}

// foreignEmptyWhy is why name, declared as sel (a type of another
// package), would go out as {}, or "" when it is not one svcgen knows.
func (c *jsonChecker) foreignEmptyWhy(name string, sel *ast.SelectorExpr, f *ast.File) string {
	m := foreignType(foreignStateless, sel, f)
	if m == "" {
		return ""
	}
	t := exprString(sel)
	return fmt.Sprintf("%s is declared as %s but does not get %s's methods (%s), and %s's fields are unexported, so a %s goes out as {} and arrives zero, without an error; "+
		"use %s itself, make %s an alias (type %s = %s), or give %s MarshalJSON (with a value receiver) and UnmarshalJSON", name, t, t, m, t, name, t, name, name, t, name)
}

// foreignPtrWhy is foreignPtr's ptrWhy for sel, a type of another package.
func (c *jsonChecker) foreignPtrWhy(sel *ast.SelectorExpr, f *ast.File, mode addrMode) jsonWhy {
	m := foreignType(foreignPtr, sel, f)
	if m == "" || mode == addressable {
		return jsonWhy{}
	}
	t := exprString(sel)
	return jsonWhy{msg: fmt.Sprintf("%s's %s has a pointer receiver, and encoding/json calls it only on a value it can address, which a %s here is not (in a value request or response, an array, a map's value), so it is skipped: "+
		"it goes out as {} and arrives zero, without an error; use *%s in its place", t, m, t, t), byValue: mode == inherit}
}

// foreignType is the entry of table for sel (pkg.Name), with pkg
// resolved through f's imports.
func foreignType(table map[string]map[string]string, sel *ast.SelectorExpr, f *ast.File) string {
	if path := selectorImport(sel, f); path != "" {
		return table[path][sel.Sel.Name]
	}
	return ""
}

// selectorImport is the import path of sel's package (pkg in pkg.Name),
// as f imports it; "" when sel is not pkg.Name of an import of f.
func selectorImport(sel *ast.SelectorExpr, f *ast.File) string {
	x, ok := sel.X.(*ast.Ident)
	if !ok || f == nil {
		return ""
	}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == x.Name {
			return path
		}
	}
	return ""
}

// A third way a value is lost: a struct that embeds a type with a
// MarshalJSON, UnmarshalJSON, MarshalText or UnmarshalText gets the
// method promoted, and encoding/json then writes and reads the whole
// struct through it: type Event struct{ time.Time; Name string } goes out
// as a bare time string, and Name is lost without an error. Through an
// embedded pointer (*Money) encoding/json calls the promoted method on the
// pointer even when it is nil — as it is in every value it decodes into —
// and the call panics.

// foreignMethods are the methods of jsonMethodNames the standard types
// svcgen knows declare (foreignStateless's types).
var foreignMethods = map[string]map[string][]string{
	"time":      {"Time": jsonMethodNames},
	"net/netip": {"Addr": {"MarshalText", "UnmarshalText"}, "AddrPort": {"MarshalText", "UnmarshalText"}, "Prefix": {"MarshalText", "UnmarshalText"}},
	"math/big":  {"Int": jsonMethodNames, "Float": {"MarshalText", "UnmarshalText"}, "Rat": {"MarshalText", "UnmarshalText"}},
}

// jsonPromo is a method of jsonMethodNames a struct gets from a type it
// embeds.
type jsonPromo struct {
	field *ast.Field // the struct's own embedded field it comes through
	from  string     // the type that declares it: Money, time.Time
	ptr   bool       // through an embedded pointer on the way
	depth int
}

// promoted are the methods of jsonMethodNames st (in file f) gets from the
// types it embeds, by name, as Go promotes them: from the shallowest
// embedded type that has one, and none when two at that depth both have
// it. Another package's types are out of sight but for those
// foreignMethods names.
func (c *jsonChecker) promoted(st *ast.StructType, f *ast.File) map[string]jsonPromo {
	c.hasJSONMethods("") // loads c.methods
	cands := map[string][]jsonPromo{}
	var visit func(st *ast.StructType, f *ast.File, top *ast.Field, ptr bool, depth int)
	visit = func(st *ast.StructType, f *ast.File, top *ast.Field, ptr bool, depth int) {
		if depth > 10 { // a cycle of embedded pointers
			return
		}
		for _, fl := range st.Fields.List {
			if len(fl.Names) > 0 {
				continue
			}
			via := top
			if via == nil {
				via = fl
			}
			t := fl.Type
			star := false
			if s, ok := t.(*ast.StarExpr); ok {
				t, star = s.X, true
			}
			from, methods, inner, innerFile := c.embeddedMethods(t, f)
			for _, m := range methods {
				cands[m] = append(cands[m], jsonPromo{field: via, from: from, ptr: ptr || star, depth: depth})
			}
			if inner != nil {
				visit(inner, innerFile, via, ptr || star, depth+1)
			}
		}
	}
	visit(st, f, nil, false, 1)
	out := map[string]jsonPromo{}
	for m, cs := range cands {
		best := cs[0]
		n := 0
		for _, p := range cs {
			switch {
			case p.depth < best.depth:
				best, n = p, 1
			case p.depth == best.depth:
				n++
			}
		}
		if n == 1 { // else ambiguous: not promoted
			out[m] = best
		}
	}
	return out
}

// embeddedMethods are the methods of jsonMethodNames the embedded type t
// (not a pointer; in file f) declares, the name to show it by, and, for a
// struct type of this package without them all, its struct, whose own
// embedded types are one level deeper.
func (c *jsonChecker) embeddedMethods(t ast.Expr, f *ast.File) (from string, methods []string, inner *ast.StructType, innerFile *ast.File) {
	for range 20 {
		switch x := t.(type) {
		case *ast.SelectorExpr:
			if path := selectorImport(x, f); path != "" {
				return exprString(x), foreignMethods[path][x.Sel.Name], nil, nil
			}
			return exprString(x), nil, nil, nil
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			spec := c.s.types[x.Name]
			if spec == nil {
				return x.Name, nil, nil, nil
			}
			if spec.Assign.IsValid() { // an alias: its target's methods
				t, f = spec.Type, c.s.fileOf(spec.Pos())
				continue
			}
			for _, m := range jsonMethodNames {
				if _, ok := c.methods[x.Name][m]; ok {
					methods = append(methods, m)
				}
			}
			if st, ok := c.s.underlying(spec.Type).(*ast.StructType); ok { // type X Y gets Y's promoted methods, not its own
				inner, innerFile = st, c.s.fileOf(st.Pos())
			}
			return x.Name, methods, inner, innerFile
		default:
			return exprString(t), nil, nil, nil
		}
	}
	return exprString(t), nil, nil, nil
}

// swallowWhy is why the struct type name (st, in file f) does not travel
// as its fields or its own methods say: encoding/json writes or reads it
// through a marshal or unmarshal method it gets from a type it embeds, as
// that type alone, and its other fields are lost, or, through an embedded
// pointer, the promoted method is called on nil and panics. pos is the
// embedded field's; "" when nothing is lost.
func (c *jsonChecker) swallowWhy(name string, st *ast.StructType, f *ast.File) (token.Pos, string) {
	promos := c.promoted(st, f)
	own := c.ownJSONMethods(name)
	used := usedPromoted(promos, own)
	if len(used) == 0 {
		return token.NoPos, ""
	}
	first := promos[used[0]]
	if !slices.Contains(used, "MarshalJSON") && slices.Contains(used, "MarshalText") {
		first = promos["MarshalText"] // the method encoding/json writes with comes first
	}
	via := map[*ast.Field]bool{}
	panics := false
	for _, m := range used {
		via[promos[m].field] = true
		panics = panics || promos[m].ptr
	}
	var lost []string
	for _, fl := range st.Fields.List {
		if via[fl] {
			continue
		}
		tag := jsonTag(fl)
		if len(fl.Names) > 0 {
			for _, n := range fl.Names {
				if _, ok := jsonName(n, tag); ok {
					lost = append(lost, n.Name)
				}
			}
			continue
		}
		t := fl.Type
		if s, ok := t.(*ast.StarExpr); ok {
			t = s.X
		}
		from, methods, inner, _ := c.embeddedMethods(t, f)
		js, _, _ := strings.Cut(tag, ",")
		id := embeddedLocal(fl.Type)
		switch {
		case inner != nil && js == "" && len(methods) == 0:
			if carried, _ := c.carries(inner, 0); carried { // its fields are promoted
				lost = append(lost, from+"'s fields")
			}
		case id == "" && methods == nil && js == "":
			// another package's type svcgen does not know: out of sight
		default:
			if n := embeddedName(fl.Type); n != "" {
				if _, ok := jsonName(ast.NewIdent(n), tag); ok {
					lost = append(lost, n)
				}
			}
		}
	}
	if len(lost) == 0 && !panics {
		return token.NoPos, "" // a struct of the embedded value alone: nothing lost
	}
	embedded := exprString(first.field.Type)
	fieldName := embeddedName(first.field.Type)
	how := used[0]
	if len(used) > 1 {
		how = strings.Join(used[:len(used)-1], ", ") + " and " + used[len(used)-1]
	}
	if first.from != strings.TrimPrefix(embedded, "*") {
		how += " (through " + strings.TrimPrefix(embedded, "*") + ")"
	}
	var verbs []string
	if slices.ContainsFunc(used, func(m string) bool { return strings.HasPrefix(m, "Marshal") }) {
		verbs = append(verbs, "writes")
	}
	if slices.ContainsFunc(used, func(m string) bool { return strings.HasPrefix(m, "Unmarshal") }) {
		verbs = append(verbs, "reads")
	}
	if len(own) > 0 {
		return first.field.Pos(), c.halfOwnWhy(name, first, fieldName, embedded, how, verbs, used, own, lost, panics)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "field %s.%s embeds %s, so %s gets %s's %s, and encoding/json %s a %s as that %s alone", name, fieldName, embedded, name, first.from, how, strings.Join(verbs, " and "), name, first.from)
	if len(lost) > 0 {
		fmt.Fprintf(&b, ": its other fields (%s) are lost, without an error", strings.Join(lost, ", "))
	}
	if panics {
		fmt.Fprintf(&b, "; through the embedded pointer it calls the method even when the pointer is nil, as it is in every %s it decodes into, and panics", name)
	}
	jsName := strings.ToLower(fieldName[:1]) + fieldName[1:]
	fmt.Fprintf(&b, "; give the embedded field a name (%s %s `json:\"%s\"`), or give %s its own MarshalJSON (with a value receiver) and UnmarshalJSON", fieldName, embedded, jsName, name)
	return first.field.Pos(), b.String()
}

// embeddedName is the name of the field that embeds t: T for T, *T,
// pkg.T and T[P].
func embeddedName(t ast.Expr) string {
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if sel, ok := t.(*ast.SelectorExpr); ok {
		return sel.Sel.Name
	}
	return exprString(t)
}

// ownJSONMethods are the methods of jsonMethodNames the type name of this
// package declares itself, in jsonMethodNames' order.
func (c *jsonChecker) ownJSONMethods(name string) []string {
	if c.s.types[name] == nil {
		return nil
	}
	c.hasJSONMethods(name) // loads c.methods
	var own []string
	for _, m := range jsonMethodNames {
		if _, ok := c.methods[name][m]; ok {
			own = append(own, m)
		}
	}
	return own
}

// usedPromoted are the promoted methods (promos) encoding/json calls on a
// struct that declares own itself: to write, MarshalJSON before
// MarshalText, to read, UnmarshalJSON before UnmarshalText, its own
// before a promoted one of the same name. So its own MarshalJSON beside a
// promoted UnmarshalJSON (or its own MarshalText beside a promoted
// MarshalJSON) leaves one direction to the embedded type. With no method
// of its own, every promoted one counts.
func usedPromoted(promos map[string]jsonPromo, own []string) []string {
	var used []string // in jsonMethodNames' order
	if len(own) == 0 {
		for _, m := range jsonMethodNames {
			if _, ok := promos[m]; ok {
				used = append(used, m)
			}
		}
		return used
	}
	for _, side := range [][2]string{{"MarshalJSON", "MarshalText"}, {"UnmarshalJSON", "UnmarshalText"}} {
		for _, m := range side {
			if slices.Contains(own, m) {
				break
			}
			if _, ok := promos[m]; ok {
				used = append(used, m)
				break
			}
		}
	}
	return used
}

// halfOwnWhy is swallowWhy's message for a struct with methods of its own
// (own) that leave writing or reading it (used) to an embedded type's.
func (c *jsonChecker) halfOwnWhy(name string, first jsonPromo, fieldName, embedded, how string, verbs, used, own, lost []string, panics bool) string {
	at := c.s.fset.Position(c.methods[name][own[0]].pos)
	var b strings.Builder
	fmt.Fprintf(&b, "field %s.%s embeds %s, so %s gets %s's %s beside its own %s (%s:%d), and encoding/json %s a %s as that %s alone",
		name, fieldName, embedded, name, first.from, how, joinAnd(own), at.Filename, at.Line, strings.Join(verbs, " and "), name, first.from)
	if slices.ContainsFunc(used, func(m string) bool {
		return strings.HasSuffix(m, "JSON") && slices.Contains(own, strings.TrimSuffix(m, "JSON")+"Text")
	}) {
		b.WriteString(" (it prefers MarshalJSON and UnmarshalJSON to the text methods)")
	}
	if len(lost) > 0 {
		fmt.Fprintf(&b, ": its other fields (%s) are lost", strings.Join(lost, ", "))
	}
	if panics {
		fmt.Fprintf(&b, "; through the embedded pointer it calls the method even when the pointer is nil, as it is in every %s it decodes into, and panics", name)
	}
	recv := string(unicode.ToLower(rune(name[0])))
	if r := c.methods[name][own[0]].recv; r != "" {
		recv = r
	}
	var decl []string
	if slices.ContainsFunc(used, func(m string) bool { return strings.HasPrefix(m, "Marshal") }) {
		decl = append(decl, fmt.Sprintf("func (%s %s) MarshalJSON() ([]byte, error)", recv, name))
	}
	if slices.ContainsFunc(used, func(m string) bool { return strings.HasPrefix(m, "Unmarshal") }) {
		decl = append(decl, fmt.Sprintf("func (%s *%s) UnmarshalJSON(b []byte) error", recv, name))
	}
	jsName := strings.ToLower(fieldName[:1]) + fieldName[1:]
	fmt.Fprintf(&b, "; declare %s on %s too, so that both directions are its own, or give the embedded field a name (%s %s `json:\"%s\"`)", joinAnd(decl), name, fieldName, embedded, jsName)
	return b.String()
}

// joinAnd is "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
