package gen

import (
	"errors"
	"go/ast"
	"go/types"
	"reflect"
	"slices"
	"strings"
)

// stub is a method of the implementation that gen appends because Service
// has the method and the implementation does not.
type stub struct {
	Name, Recv, Req, Resp string
}

// newType is a request or response struct gen appends because a method
// names it and the package does not declare it.
type newType struct {
	Name, Role, Method string
	Fields             []stubField // string fields a transport needs
}

// stubField is a string field of an appended request type.
type stubField struct{ Name, Field string }

// plan works out what gen appends to the user's code: missing request and
// response types, and stubs for methods the implementation lacks.
func (s *source) plan(svc *Service, ifaceFile string) {
	declared := map[string]bool{}
	for _, m := range svc.Methods {
		for i, t := range []string{m.Req, m.Resp} {
			if _, ok := s.types[t]; ok || declared[t] {
				continue
			}
			declared[t] = true
			nt := newType{Name: t, Role: "output", Method: m.Name}
			if i == 0 {
				nt.Role = "input"
				for _, tr := range svc.transports {
					for _, f := range tr.RequestFields(m.Name) {
						sf := stubField{Name: f, Field: exportedField(f)}
						if !slices.Contains(nt.Fields, sf) {
							nt.Fields = append(nt.Fields, sf)
						}
					}
				}
			}
			svc.types = append(svc.types, nt)
		}
	}
	svc.appendFile = ifaceFile

	impl, ptr, file := s.implementation()
	if impl == "" {
		if len(svc.Methods) > 0 {
			svc.notes = append(svc.notes, "no `var _ Service = (*T)(nil)` line in "+s.dir+", so svcgen cannot tell which type implements Service and appends no method stubs; add the line to have them")
		}
	} else {
		if importName(s.files[file], "context") == "context" {
			svc.appendFile = file
		}
		have, recv := s.methodsOf(impl)
		if recv == "" {
			recv = strings.ToLower(impl[:1])
		}
		if ptr {
			recv += " *" + impl
		} else {
			recv += " " + impl
		}
		for _, m := range svc.Methods {
			if !have[m.Name] {
				svc.stubs = append(svc.stubs, stub{Name: m.Name, Recv: recv, Req: m.Req, Resp: m.Resp})
			}
		}
	}
	svc.NotImplemented = len(svc.stubs) > 0 || s.uses("errNotImplemented")
}

// implementation finds `var _ Service = (*T)(nil)` (or T{}, &T{}).
func (s *source) implementation() (name string, ptr bool, file string) {
	for _, fn := range s.names {
		for _, d := range s.files[fn].Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, sp := range gd.Specs {
				vs, ok := sp.(*ast.ValueSpec)
				if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "_" || !isIdent(vs.Type, "Service") || len(vs.Values) != 1 {
					continue
				}
				switch v := vs.Values[0].(type) {
				case *ast.CallExpr: // (*T)(nil)
					if p, ok := v.Fun.(*ast.ParenExpr); ok {
						if st, ok := p.X.(*ast.StarExpr); ok {
							if id, ok := st.X.(*ast.Ident); ok {
								return id.Name, true, fn
							}
						}
					}
				case *ast.CompositeLit: // T{}
					if id, ok := v.Type.(*ast.Ident); ok {
						return id.Name, false, fn
					}
				case *ast.UnaryExpr: // &T{}
					if cl, ok := v.X.(*ast.CompositeLit); ok {
						if id, ok := cl.Type.(*ast.Ident); ok {
							return id.Name, true, fn
						}
					}
				}
			}
		}
	}
	return "", false, ""
}

// methodsOf lists the methods declared on T or *T and the receiver name
// they use.
func (s *source) methodsOf(typ string) (map[string]bool, string) {
	have := map[string]bool{}
	recv := ""
	for _, fn := range s.names {
		for _, d := range s.files[fn].Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			rt := fd.Recv.List[0].Type
			if st, ok := rt.(*ast.StarExpr); ok {
				rt = st.X
			}
			if !isIdent(rt, typ) {
				continue
			}
			have[fd.Name.Name] = true
			if names := fd.Recv.List[0].Names; recv == "" && len(names) == 1 && names[0].Name != "_" {
				recv = names[0].Name
			}
		}
	}
	return have, recv
}

// uses reports whether any user file mentions the identifier.
func (s *source) uses(name string) bool {
	found := false
	for _, fn := range s.names {
		ast.Inspect(s.files[fn], func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == name {
				found = true
			}
			return !found
		})
	}
	return found
}

func exprString(e ast.Expr) string { return types.ExprString(e) }

func reflectTagGet(tag, key string) string { return reflect.StructTag(tag).Get(key) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
