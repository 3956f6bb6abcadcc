package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

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

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// DecodeJSON returns a go-kit DecodeRequestFunc that reads the body into a
// new T. An empty body gives the zero T (so GET routes share the decoder);
// trailing data after the JSON value is malformed. The body is limited by
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
	if _, limited := body.(*maxBytesMarker); !limited {
		body = http.MaxBytesReader(nil, body, DefaultMaxBody)
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig), errors.Is(err, ErrBodyTimeout):
			return err
		case errors.Is(err, io.EOF):
			return nil // empty body: zero value
		}
		return fmt.Errorf("%w: %s", ErrMalformedJSON, describeJSONError(err))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, ErrBodyTimeout) {
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

// EncodeJSON is go-kit's EncodeJSONResponse: 200 (or the response's
// StatusCoder) with the response as JSON.
var EncodeJSON kithttp.EncodeResponseFunc = kithttp.EncodeJSONResponse

// maxBytesMarker tags a body already limited by LimitBody, so DecodeJSON
// does not stack a second, smaller limit on it.
type maxBytesMarker struct{ io.ReadCloser }
