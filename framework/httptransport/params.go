package httptransport

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	kithttp "github.com/go-kit/kit/transport/http"
)

// DecodeBody reads the JSON body into v (a pointer). An empty body leaves v
// as it is. Errors answer 400 (malformed) or 413 (too large).
func DecodeBody(r *http.Request, v any) error { return decodeBody(r, v) }

// DecodeQuery sets the fields of *v (a struct pointer) from the query
// string, matching each parameter to a field by its json tag (or name).
// Strings, booleans, integers, floats and slices of them are supported;
// unknown parameters are ignored, a value of the wrong type answers 400
// naming the parameter.
func DecodeQuery(r *http.Request, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("httptransport: DecodeQuery needs a struct pointer, got %T", v)
	}
	q := r.URL.Query()
	if len(q) == 0 {
		return nil
	}
	sv := rv.Elem()
	st := sv.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		name := jsonName(f)
		if name == "-" {
			continue
		}
		vals, ok := q[name]
		if !ok || len(vals) == 0 {
			continue
		}
		if err := setField(sv.Field(i), vals); err != nil {
			return fmt.Errorf("%w: query parameter %q: %w", ErrBadParameter, name, err)
		}
	}
	return nil
}

// PathString sets *dst to the path parameter name ("{id}" in the route).
func PathString(r *http.Request, name string, dst *string) error {
	*dst = r.PathValue(name)
	return nil
}

// PathInt sets *dst to the integer path parameter name; a non-integer
// answers 400 naming it.
func PathInt[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](r *http.Request, name string, dst *T) error {
	s := r.PathValue(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: path parameter %q: %q is not an integer", ErrBadParameter, name, s)
	}
	*dst = T(n)
	return nil
}

// EncodeJSONStatus is EncodeJSON with a fixed success status (201 for a
// create).
func EncodeJSONStatus(status int) kithttp.EncodeResponseFunc {
	return func(ctx context.Context, w http.ResponseWriter, resp any) error {
		return encodeJSON(ctx, w, resp, status)
	}
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if tag == "" {
		return f.Name
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return f.Name
	}
	return name
}

func setField(v reflect.Value, vals []string) error {
	if v.Kind() == reflect.Slice {
		out := reflect.MakeSlice(v.Type(), len(vals), len(vals))
		for i, s := range vals {
			if err := setScalar(out.Index(i), s); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	}
	return setScalar(v, vals[len(vals)-1])
}

func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("a %s cannot come from the query string", v.Type())
	}
	return nil
}
