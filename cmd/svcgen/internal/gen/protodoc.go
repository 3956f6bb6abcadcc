package gen

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// The .proto carries the Go doc comments of the Service methods, of the
// message types and of their fields as leading comments, which protoc
// carries into the stubs of every language (report j53c finding 8). A
// field of a named string type with constants lists their values in its
// comment: on the wire it is a plain string (an enum would change the
// wire), so the comment is where a caller in another language sees them.

// document sets the doc comment lines of gs's methods, messages and
// fields from the service's source.
func (gs *grpcService) document(pkg *Package) {
	s := pkg.s
	methods := map[string]*ast.Field{}
	if spec, ok := s.types["Service"]; ok {
		if it, ok := spec.Type.(*ast.InterfaceType); ok {
			for _, f := range it.Methods.List {
				if len(f.Names) > 0 {
					methods[f.Names[0].Name] = f
				}
			}
		}
	}
	for _, m := range gs.Methods {
		if f := methods[m.Name]; f != nil {
			m.Doc = docLines(f.Doc, f.Comment)
		}
	}
	typeDocs := s.typeDocs()
	for _, msg := range gs.Messages {
		msg.Doc = docLines(typeDocs[msg.Name])
		spec, ok := s.types[msg.Name]
		if !ok {
			// Appended by gen, with the doc comment of stub.go.tmpl: the
			// same in this .proto as in the next run's, which reads it
			// from the source.
			msg.Doc = appendedTypeDoc(gs.Methods, msg.Name)
			continue
		}
		st, ok := s.underlying(spec.Type).(*ast.StructType)
		if !ok {
			continue
		}
		fields := map[string]*ast.Field{}
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				fields[n.Name] = f
			}
		}
		for _, pf := range msg.Fields {
			f := fields[pf.GoName]
			if f == nil {
				continue
			}
			pf.Doc = docLines(f.Doc, f.Comment)
			if named := s.namedString(f.Type); named != "" {
				if vals := s.stringConsts(named); len(vals) > 0 {
					pf.Doc = append(pf.Doc, "// Values: "+strings.Join(vals, ", ")+" (the constants of Go type "+named+").")
				}
			}
		}
	}
}

// docLines is the first non-empty comment group as .proto comment lines
// ("// text", "//" between paragraphs); nil for none. //warren: lines,
// being directives, are not part of it.
func docLines(groups ...*ast.CommentGroup) []string {
	for _, g := range groups {
		if g == nil {
			continue
		}
		text := strings.Trim(g.Text(), "\n")
		if strings.TrimSpace(text) == "" {
			continue
		}
		var out []string
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimRight(l, " \t\r")
			if l == "" {
				out = append(out, "//")
			} else {
				out = append(out, "// "+l)
			}
		}
		return out
	}
	return nil
}

// typeDocs is the doc comment of each top-level type: its own, or its
// declaration's when the declaration has that one type.
func (s *source) typeDocs() map[string]*ast.CommentGroup {
	out := map[string]*ast.CommentGroup{}
	for _, fn := range s.names {
		for _, d := range s.files[fn].Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if doc != nil {
					out[ts.Name.Name] = doc
				}
			}
		}
	}
	return out
}

// namedString is the name of the package's string type a field holds —
// itself, or through a pointer, a slice or a map's values — or "".
func (s *source) namedString(e ast.Expr) string {
	for range 4 {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
			continue
		case *ast.ArrayType:
			if t.Len != nil {
				return ""
			}
			e = t.Elt
			continue
		case *ast.MapType:
			e = t.Value
			continue
		case *ast.Ident:
			if _, ok := s.types[t.Name]; ok && isIdent(s.underlying(t), "string") {
				return t.Name
			}
		}
		return ""
	}
	return ""
}

// stringConsts are the values of the package's constants of the named
// type — `const StatusOpen Status = "open"` or `= Status("open")` — in
// the order of the source, each once, quoted.
func (s *source) stringConsts(typ string) []string {
	var out []string
	seen := map[string]bool{}
	for _, fn := range s.names {
		for _, d := range s.files[fn].Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for _, v := range vs.Values {
					lit := v
					if call, ok := v.(*ast.CallExpr); ok && vs.Type == nil && isIdent(call.Fun, typ) && len(call.Args) == 1 {
						lit = call.Args[0]
					} else if vs.Type == nil || !isIdent(vs.Type, typ) {
						continue
					}
					bl, ok := lit.(*ast.BasicLit)
					if !ok || bl.Kind != token.STRING {
						continue
					}
					val, err := strconv.Unquote(bl.Value)
					if err != nil || seen[val] {
						continue
					}
					seen[val] = true
					out = append(out, strconv.Quote(val))
				}
			}
		}
	}
	return out
}

// appendedTypeDoc is the doc comment, as .proto comment lines, of the
// request or response type name that gen appends to the service's source
// (plan): stub.go.tmpl's, rendered for the first method that takes or
// returns it.
func appendedTypeDoc(methods []*grpcMethod, name string) []string {
	var nt *newType
	for _, m := range methods {
		if m.Req == name {
			nt = &newType{Name: name, Role: "input", Method: m.Name}
		} else if m.Resp == name {
			nt = &newType{Name: name, Role: "output", Method: m.Name}
		}
		if nt != nil {
			break
		}
	}
	if nt == nil {
		return nil
	}
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, "stub.go.tmpl", map[string]any{"Types": []newType{*nt}}); err != nil {
		return nil
	}
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+b.String(), parser.ParseComments)
	if err != nil {
		return nil
	}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
			return docLines(gd.Doc)
		}
	}
	return nil
}
