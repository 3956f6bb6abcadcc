package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"strings"
)

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
