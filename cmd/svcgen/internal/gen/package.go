package gen

import (
	"errors"
	"go/ast"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
)

// Package is what an Emitter may ask about the service's source: the
// fields of its request and response types.
type Package struct{ s *source }

// Kind is what a transport can do with a field's type.
type Kind int

// Kinds of fields.
const (
	KindOther Kind = iota
	KindString
	KindInt
	KindUint
	KindFloat
	KindBool
	KindSlice // of a scalar kind, in Elem
)

// Field is one exported, JSON-visible field of a struct type.
type Field struct {
	JSON, Name string // json name and Go name
	Kind, Elem Kind
	Exact      bool   // the type is exactly the predeclared one (string, not a named string)
	Small      bool   // int8, int16, uint8, uint16
	Type       string // as written
	Embedded   bool
	Pos        token.Position
}

// Exists reports whether the package declares the type (svcgen appends
// the missing ones).
func (p *Package) Exists(typeName string) bool {
	_, ok := p.s.types[typeName]
	return ok
}

// TypePos is where the type is declared.
func (p *Package) TypePos(typeName string) token.Position {
	if spec, ok := p.s.types[typeName]; ok {
		return p.s.fset.Position(spec.Pos())
	}
	return token.Position{}
}

// Fields lists the JSON-visible fields of a struct type (nil when the
// type does not exist yet).
func (p *Package) Fields(typeName string) []Field {
	s := p.s
	spec, ok := s.types[typeName]
	if !ok {
		return nil
	}
	st, ok := s.underlying(spec.Type).(*ast.StructType)
	if !ok {
		return nil
	}
	var out []Field
	for _, f := range st.Fields.List {
		tag := jsonTag(f)
		if len(f.Names) == 0 {
			out = append(out, Field{Name: exprString(f.Type), Type: exprString(f.Type), Pos: s.fset.Position(f.Pos()), Embedded: true})
			continue
		}
		for _, n := range f.Names {
			js, ok := jsonName(n, tag)
			if !ok {
				continue
			}
			fi := Field{JSON: js, Name: n.Name, Type: exprString(f.Type), Pos: s.fset.Position(n.Pos())}
			fi.Kind, fi.Exact, fi.Small = s.kindOf(f.Type)
			if at, ok := f.Type.(*ast.ArrayType); ok && at.Len == nil {
				if ek, exact, _ := s.kindOf(at.Elt); ek != KindOther {
					fi.Kind, fi.Elem, fi.Exact = KindSlice, ek, exact
				}
			}
			out = append(out, fi)
		}
	}
	return out
}

func (s *source) kindOf(e ast.Expr) (k Kind, exact, small bool) {
	id, ok := e.(*ast.Ident)
	if !ok {
		return KindOther, false, false
	}
	if _, local := s.types[id.Name]; !local {
		switch id.Name {
		case "string":
			return KindString, true, false
		case "int", "int32", "int64", "rune":
			return KindInt, true, false
		case "int8", "int16":
			return KindInt, true, true
		case "uint", "uint32", "uint64":
			return KindUint, true, false
		case "uint8", "uint16", "byte":
			return KindUint, true, true
		case "float32", "float64":
			return KindFloat, true, false
		case "bool":
			return KindBool, true, false
		}
		return KindOther, false, false
	}
	u := s.underlying(id)
	if u == e {
		return KindOther, false, false
	}
	k, _, small = s.kindOf(u)
	if k == KindSlice {
		return KindOther, false, false // named slices: keep it simple
	}
	return k, false, small
}

// jsonTag is a struct field's json tag ("" without one).
func jsonTag(f *ast.Field) string {
	if f.Tag == nil {
		return ""
	}
	t, err := strconv.Unquote(f.Tag.Value)
	if err != nil {
		return ""
	}
	return reflectTagGet(t, "json")
}

// jsonName is the name encoding/json gives field n with tag; ok is false
// for an unexported or `json:"-"` field.
func jsonName(n *ast.Ident, tag string) (string, bool) {
	if !n.IsExported() {
		return "", false
	}
	js, _, _ := strings.Cut(tag, ",")
	if js == "-" && !strings.HasPrefix(tag, "-,") {
		return "", false
	}
	if js == "" {
		js = n.Name
	}
	return js, true
}

// Previous is the content of a file svcgen wrote before in the service
// directory (path relative to it, slash-separated): nil, and no error,
// when there is none, as for a new service.
func (p *Package) Previous(rel string) ([]byte, error) {
	if p.s.prev == nil {
		return nil, nil
	}
	b, err := fs.ReadFile(p.s.prev, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
