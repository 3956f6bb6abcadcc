package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-kit/kit/endpoint"
	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
)

// Method describes one gRPC method for NewEndpoint: its full name, the
// go-kit functions that turn the Go request into the request message and
// the reply message into the Go response, and a reply message to copy the
// type of.
type Method struct {
	service, name string
	enc           kitgrpc.EncodeRequestFunc
	dec           kitgrpc.DecodeResponseFunc
	reply         any
	idempotent    bool
	kitOpts       []kitgrpc.ClientOption
}

// EndpointOption adjusts a method's endpoint.
type EndpointOption func(*Method)

// Idempotent declares the method safe to apply twice, so it is retried on
// failures after which the server may have acted (a connection lost
// mid-call, a deadline). Other methods are retried only when the call
// surely was not acted on.
func Idempotent() EndpointOption { return func(m *Method) { m.idempotent = true } }

// ClientOptions adds go-kit grpctransport client options (ClientBefore to
// set metadata, ClientAfter to read headers) to the method.
func ClientOptions(opts ...kitgrpc.ClientOption) EndpointOption {
	return func(m *Method) { m.kitOpts = append(m.kitOpts, opts...) }
}

// NewEndpoint returns the go-kit endpoint of one method of the service
// (fullMethod "/package.Service/Method"): every call goes through c —
// balancer, retries, ejection — to one instance, where the method's go-kit
// grpctransport.Client (made once per instance) encodes the request with
// enc, invokes the method and decodes the reply with dec. It panics on a
// malformed fullMethod or nil functions, which are programming errors in
// generated code.
func NewEndpoint(c *Client, fullMethod string, enc kitgrpc.EncodeRequestFunc, dec kitgrpc.DecodeResponseFunc, reply any, opts ...EndpointOption) endpoint.Endpoint {
	svc, name, err := splitMethod(fullMethod)
	if err != nil || enc == nil || dec == nil || reply == nil {
		panic(fmt.Sprintf("grpcclient.NewEndpoint(%q): %v (enc, dec and reply must be set)", fullMethod, err))
	}
	m := &Method{service: svc, name: name, enc: enc, dec: dec, reply: reply}
	for _, o := range opts {
		o(m)
	}
	return func(ctx context.Context, req any) (any, error) {
		return c.Do(ctx, &call{m: m, req: req}, m.idempotent)
	}
}

func (m *Method) kitClient(cc *grpc.ClientConn) *kitgrpc.Client {
	opts := append([]kitgrpc.ClientOption{kitgrpc.ClientBefore(propagateRequestID)}, m.kitOpts...)
	return kitgrpc.NewClient(cc, m.service, m.name, m.enc, m.dec, m.reply, opts...)
}

func splitMethod(full string) (svc, name string, err error) {
	s, ok := strings.CutPrefix(full, "/")
	if !ok {
		return "", "", errors.New("want /package.Service/Method")
	}
	svc, name, ok = strings.Cut(s, "/")
	if !ok || svc == "" || name == "" || strings.Contains(name, "/") {
		return "", "", errors.New("want /package.Service/Method")
	}
	return svc, name, nil
}
