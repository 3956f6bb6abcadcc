package gen

import (
	"go/ast"
	"slices"
)

// undeclared reports every type name the methods' request and response
// types reach (through fields, element types and the types they name)
// that is declared neither in the package nor by Go: a typo like
// `Name Strang`. The transports would each call it a type they cannot
// carry ("no protobuf counterpart"), which sends the user looking in the
// wrong place (report j53c 11); the compiler's word is "undefined".
// Another package's types are the compiler's to check. It reports
// whether it found one.
func (s *source) undeclared(svc *Service) bool {
	seen := map[string]bool{}
	reported := map[string]bool{} // by position: once, whoever reaches it
	var walkType func(method, name string)
	var walk func(method, owner, field string, e ast.Expr)
	walk = func(method, owner, field string, e ast.Expr) {
		switch t := e.(type) {
		case *ast.Ident:
			spec, local := s.types[t.Name]
			switch {
			case local && spec != nil:
				walkType(method, t.Name)
			case predeclared[t.Name] || s.typeParam(owner, t.Name):
			default:
				at := s.fset.Position(t.Pos()).String()
				if reported[at] {
					return
				}
				reported[at] = true
				where := "type " + owner
				if field != "" {
					where = "field " + owner + "." + field
				}
				s.problem(t.Pos(), method, "undefined: %s (in %s): no type of that name is declared in this package, nor is it a predeclared Go type; correct the name (a typo?) or declare the type", t.Name, where)
			}
		case *ast.ParenExpr:
			walk(method, owner, field, t.X)
		case *ast.StarExpr:
			walk(method, owner, field, t.X)
		case *ast.ArrayType:
			walk(method, owner, field, t.Elt)
		case *ast.MapType:
			walk(method, owner, field, t.Key)
			walk(method, owner, field, t.Value)
		case *ast.ChanType:
			walk(method, owner, field, t.Value)
		case *ast.IndexExpr:
			walk(method, owner, field, t.X)
			walk(method, owner, field, t.Index)
		case *ast.IndexListExpr:
			walk(method, owner, field, t.X)
			for _, x := range t.Indices {
				walk(method, owner, field, x)
			}
		case *ast.StructType:
			for _, f := range t.Fields.List {
				name := field
				if name == "" && len(f.Names) > 0 {
					name = f.Names[0].Name
				}
				walk(method, owner, name, f.Type)
			}
		}
	}
	walkType = func(method, name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if spec := s.types[name]; spec != nil {
			walk(method, name, "", spec.Type)
		}
	}
	for _, m := range svc.Methods {
		for _, t := range []string{m.Req, m.Resp} {
			walkType(m.Name, t)
		}
	}
	return len(reported) > 0
}

// typeParam reports whether name is a type parameter of the type owner.
func (s *source) typeParam(owner, name string) bool {
	spec := s.types[owner]
	if spec == nil || spec.TypeParams == nil {
		return false
	}
	return slices.ContainsFunc(spec.TypeParams.List, func(f *ast.Field) bool {
		return slices.ContainsFunc(f.Names, func(n *ast.Ident) bool { return n.Name == name })
	})
}
