package httptransport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// DefaultMaxBody is the request body limit when none is set: 1 MiB.
const DefaultMaxBody = 1 << 20

// ErrMalformedJSON is the (wrapped) error for a body that is not the JSON
// the method expects; it answers 400.
var ErrMalformedJSON = svcerr.New(svcerr.InvalidArgument, "malformed_json", "malformed JSON")

// ErrBadParameter is the (wrapped) error for a path or query parameter of
// the wrong type; it answers 400 naming the parameter.
var ErrBadParameter = svcerr.New(svcerr.InvalidArgument, "bad_parameter", "bad parameter")

// DecodeJSON returns a go-kit DecodeRequestFunc that reads the body into a
// new T. An empty body gives the zero T (so GET routes share the decoder);
// any error decoding a body that is not empty, even an io.EOF returned by a
// field's UnmarshalJSON, and trailing data after the JSON value are
// malformed. The body is limited by
// LimitBody middleware; without it DecodeJSON applies DefaultMaxBody itself.
func DecodeJSON[T any]() kithttp.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		var v T
		if err := decodeBody(r, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
}

func decodeBody(r *http.Request, v any) error {
	body := r.Body
	if limited, _ := r.Context().Value(bodyLimitedKey{}).(bool); !limited {
		body = http.MaxBytesReader(nil, body, DefaultMaxBody)
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, ErrBodyTimeout):
			return bodyNotDecoded{err} // before the method: CodeBodyTimeout
		case errors.As(err, &tooBig):
			return err
		case errors.Is(err, io.EOF) && dec.InputOffset() == 0:
			// Empty (or all-space) body: zero value. Told by the decoder not
			// having read a value, not by the error alone: an io.EOF from a
			// field's own UnmarshalJSON (fmt.Sscanf's) is a failed decode,
			// and v is half filled.
			return nil
		}
		return fmt.Errorf("%w: %s", ErrMalformedJSON, describeJSONError(err))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.Is(err, ErrBodyTimeout) {
			return bodyNotDecoded{err}
		}
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("%w: trailing data after the JSON value", ErrMalformedJSON)
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return err.Error()
}

// EncodeJSON answers 200 (or the response's StatusCoder) with the
// response as JSON, as go-kit's EncodeJSONResponse does, but makes the
// JSON before writing anything: a response encoding/json cannot encode (a
// NaN or ±Inf float, a time.Time after year 9999, a chan) is returned as
// an error, which the server's error encoder answers 500 internal and
// logs with the route and the value's place in the response. (go-kit's
// writes the 200 first, and its caller then read an error body as a zero
// response.) The JSON is made in a pooled buffer: no allocation of its
// own per request.
var EncodeJSON kithttp.EncodeResponseFunc = func(ctx context.Context, w http.ResponseWriter, resp any) error {
	return encodeJSON(ctx, w, resp, 0)
}

// jsonBuf is a buffer with its encoder, pooled together.
type jsonBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBufs = sync.Pool{New: func() any {
	b := new(jsonBuf)
	b.enc = json.NewEncoder(&b.buf)
	return b
}}

// maxPooledJSON: a buffer grown past it by a large response is dropped
// rather than kept for every later small one.
const maxPooledJSON = 64 << 10

// encodeJSON writes resp as JSON with status, or with the response's
// StatusCoder (else 200) when status is 0.
func encodeJSON(ctx context.Context, w http.ResponseWriter, resp any, status int) error {
	if status == 0 {
		status = http.StatusOK
		if sc, ok := resp.(kithttp.StatusCoder); ok {
			status = sc.StatusCode()
		}
	}
	var jb *jsonBuf
	if status != http.StatusNoContent {
		jb = jsonBufs.Get().(*jsonBuf)
		defer func() {
			if jb.buf.Cap() <= maxPooledJSON {
				jb.buf.Reset()
				jsonBufs.Put(jb)
			}
		}()
		if err := jb.enc.Encode(resp); err != nil {
			return unencodable(ctx, resp, err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if hd, ok := resp.(kithttp.Headerer); ok {
		for k, vs := range hd.Headers() {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
	}
	w.WriteHeader(status)
	if jb != nil {
		_, _ = w.Write(jb.buf.Bytes()) // the status is out: a caller gone away is nothing to answer
	}
	return nil
}

// unencodable is the error for a response encoding/json refused: it names
// the route and where in the response the value is, for the logs (the
// caller reads "internal error").
func unencodable(ctx context.Context, resp any, err error) error {
	route := "response"
	if m, ok := reqmeta.FromContext(ctx); ok && m.Route != "" {
		route = "response of " + m.Route
	}
	if at := badJSONPath(reflect.ValueOf(resp), ""); at != "" {
		return fmt.Errorf("httptransport: %s cannot be encoded as JSON at %s: %w", route, at, err)
	}
	return fmt.Errorf("httptransport: %s cannot be encoded as JSON: %w", route, err)
}

// badJSONPath finds the value encoding/json refuses inside v, as a path
// of json names (".mean", ".lines[3].at"), by descending into the first
// part that fails to encode on its own. Only on the error path.
func badJSONPath(v reflect.Value, path string) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return path
		}
		v = v.Elem()
	}
	fails := func(c reflect.Value) bool {
		if !c.CanInterface() {
			return false
		}
		_, err := json.Marshal(c.Interface())
		return err != nil
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name := jsonName(f)
			if !f.IsExported() || name == "-" {
				continue
			}
			if c := v.Field(i); fails(c) {
				if f.Anonymous && f.Tag.Get("json") == "" {
					return badJSONPath(c, path) // its fields are the parent's in JSON
				}
				return badJSONPath(c, path+"."+name)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if c := v.Index(i); fails(c) {
				return badJSONPath(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if c := it.Value(); fails(c) {
				return badJSONPath(c, fmt.Sprintf("%s[%v]", path, it.Key()))
			}
		}
	}
	return path
}

// bodyLimitedKey marks, in a request's context, a body already limited by
// LimitBody, so DecodeJSON does not stack a second, smaller limit on it.
type bodyLimitedKey struct{}
