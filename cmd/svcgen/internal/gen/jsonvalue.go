package gen

import (
	"fmt"
	"go/ast"
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
			return table[path][sel.Sel.Name]
		}
	}
	return ""
}
