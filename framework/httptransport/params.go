package httptransport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// DecodeBody reads the JSON body into v (a pointer). An empty body leaves v
// as it is. Errors answer 400 (malformed) or 413 (too large).
func DecodeBody(r *http.Request, v any) error { return decodeBody(r, v) }

// DecodeQuery sets the fields of *v (a struct pointer) from the query
// string, matching each parameter to a field by its json tag (or name).
// Strings, booleans, integers, floats and slices of them are supported;
// unknown parameters are ignored, a value of the wrong type answers 400
// naming the parameter. A float must be finite and fit its field: "NaN",
// "Inf", "-Infinity" (which JSON cannot carry) and 1e39 for a float32 are
// refused.
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
			return badParameter("query", name, err.Error())
		}
	}
	return nil
}

// PathString sets *dst to the path parameter name ("{id}" in the route).
// A value that is not valid UTF-8 (u-%FF) answers 400 bad_parameter, as
// in the query string (see notUTF8).
func PathString(r *http.Request, name string, dst *string) error {
	s := r.PathValue(name)
	if !utf8.ValidString(s) {
		return badParameter("path", name, notUTF8(s))
	}
	*dst = s
	return nil
}

// notUTF8 says why a string parameter is refused. Neither of Warren's
// codecs carries such a string: JSON turns each bad byte into U+FFFD,
// protobuf refuses to marshal it, so a service that forwarded one over
// gRPC answered 500 (the caller's bytes, its own encode failure; report
// r55a N1) where the same value sent over HTTP reached the handler
// altered.
func notUTF8(s string) string {
	return fmt.Sprintf("%s is not valid UTF-8 text", quoteShort(s))
}

// PathInt sets *dst to the integer path parameter name, parsed with T's
// signedness and size: "-1" for a uint64, or 2147483648 for an int32, is
// refused, never wrapped, and every uint64 can be sent. A value that is
// not a T answers 400 bad_parameter naming the parameter and why
// (`path parameter "id": "-1" is not a uint64`).
func PathInt[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](r *http.Request, name string, dst *T) error {
	s := r.PathValue(name)
	var zero T
	bits := int(unsafe.Sizeof(zero)) * 8
	if ^zero < zero { // signed
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return badParameter("path", name, intError(s, reflect.TypeFor[T]().Kind(), err))
		}
		*dst = T(n)
		return nil
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return badParameter("path", name, intError(s, reflect.TypeFor[T]().Kind(), err))
	}
	*dst = T(n)
	return nil
}

// badParameter is ErrBadParameter (errors.Is holds) with a message the
// caller is sent: which parameter, and why.
func badParameter(where, name, why string) error {
	return svcerr.Errorf(ErrBadParameter.Kind, ErrBadParameter.Code, "%s parameter %q: %s", where, name, why)
}

// intError says why s is not an integer of kind k.
func intError(s string, k reflect.Kind, err error) string {
	article := "a"
	if k.String()[0] == 'i' {
		article = "an"
	}
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Sprintf("%s is out of range for %s %s", quoteShort(s), article, k)
	}
	return fmt.Sprintf("%s is not %s %s", quoteShort(s), article, k)
}

// quoteShort quotes s, cut to 64 bytes: the answer echoes the caller's
// value, not all of a long one.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
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
		if !utf8.ValidString(s) {
			return errors.New(notUTF8(s))
		}
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s is not true or false", quoteShort(s))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return errors.New(intError(s, v.Kind(), err))
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return errors.New(intError(s, v.Kind(), err))
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := parseFloat(s, v.Kind(), v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("a %s cannot come from the query string", v.Type())
	}
	return nil
}

// parseFloat parses s as a finite float of the given size. ParseFloat
// takes "NaN", "Inf", "-Infinity"…, which JSON cannot carry: an endpoint
// echoing one answered 500 from the response encoder, so they are
// refused here as the caller's mistake. A value too large for the size
// (1e39 for a float32) is out of range, never rounded to ±Inf. Go's own
// spellings beyond a JSON number (0x1p-2, 1_000) are refused too: the
// query string takes what a JSON body would.
func parseFloat(s string, k reflect.Kind, bits int) (float64, error) {
	n, err := strconv.ParseFloat(s, bits)
	switch {
	case err == nil && strings.ContainsAny(s, "_xXpP"):
		return 0, fmt.Errorf("%s is not a decimal number", quoteShort(s))
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is out of range for a %s", quoteShort(s), k)
	case err != nil:
		return 0, fmt.Errorf("%s is not a number", quoteShort(s))
	case math.IsNaN(n) || math.IsInf(n, 0):
		return 0, fmt.Errorf("%s is not a finite number (JSON cannot carry NaN or infinity)", quoteShort(s))
	}
	return n, nil
}
