package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/requestid"

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
	full          string // "/package.Service/Method"
	enc           kitgrpc.EncodeRequestFunc
	dec           kitgrpc.DecodeResponseFunc
	reply         any
	replyType     reflect.Type // what each call's reply is made from
	idempotent    bool
	keyed         bool
	apiMethod     string // Named: the API method, for spans and per-method series
	kitOpts       []kitgrpc.ClientOption
}

// EndpointOption adjusts a method's endpoint.
type EndpointOption func(*Method)

// Idempotent declares the method safe to apply twice, so it is retried on
// failures after which the server may have acted (a connection lost
// mid-call, a deadline). Other methods are retried only when the call
// surely was not acted on.
func Idempotent() EndpointOption { return func(m *Method) { m.idempotent = true } }

// Keyed gives every call of the method one idempotency key, sent as
// metadata on every attempt (a server's idempotency.Do applies the call
// once however many attempts reach it), and retries it like an idempotent
// call. Inside a call being served with a key, the key is derived from
// that one, so a retried upstream call repeats its downstream keys.
func Keyed() EndpointOption { return func(m *Method) { m.keyed = true } }

// Named names the API method a call serves ("Get"), as client.Method
// does for an HTTP call: each call is a span "service.Method" around its
// attempts, and its latency and outcome code are reported per method
// (client.MethodObserver, WithClientOptions(client.WithObserver(...))).
// Generated clients pass the Go method's name, so a method's span and
// series are the same over HTTP and gRPC.
func Named(method string) EndpointOption { return func(m *Method) { m.apiMethod = method } }

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
	m := &Method{service: svc, name: name, full: fullMethod, enc: enc, dec: dec, reply: reply,
		replyType: reflect.Indirect(reflect.ValueOf(reply)).Type()}
	for _, o := range opts {
		o(m)
	}
	return func(ctx context.Context, req any) (any, error) {
		if m.keyed {
			ctx = context.WithValue(ctx, keyCtx{}, idempotency.Derive(ctx, fullMethod))
		}
		x := &call{m: m, req: req}
		if m.apiMethod != "" {
			return c.DoMethod(ctx, m.apiMethod, x, m.idempotent || m.keyed)
		}
		return c.Do(ctx, x, m.idempotent || m.keyed)
	}
}

// kitClient is the go-kit client of a method given ClientOptions, which
// only go-kit's client can run (their functions are its unexported
// fields).
func (m *Method) kitClient(cc *grpc.ClientConn) *kitgrpc.Client {
	opts := append([]kitgrpc.ClientOption{kitgrpc.ClientBefore(propagateRequestID, propagateKey)}, m.kitOpts...)
	return kitgrpc.NewClient(cc, m.service, m.name, m.encode, m.decode, m.reply, opts...)
}

// invoke makes one call of a method without ClientOptions (generated
// clients' methods) as go-kit's client would, less what only those
// options need: its context gets the method name (ContextKeyRequestMethod)
// and the metadata of propagateRequestID and propagateKey, in place of any
// outgoing metadata it had, as go-kit's does. Left out: go-kit's
// cancellable context per call (grpc-go's call makes its own, and a
// cancellable parent makes that one register with it) and the header and
// trailer copies only ClientAfter reads — about a dozen allocations per
// call (docs/grpc.md, "Measured").
func (m *Method) invoke(ctx context.Context, cc *grpc.ClientConn, req any) (any, error) {
	ctx = context.WithValue(ctx, kitgrpc.ContextKeyRequestMethod, m.full)
	msg, err := m.encode(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx = outgoing(ctx)
	reply := reflect.New(m.replyType).Interface()
	if err := cc.Invoke(ctx, m.full, msg, reply); err != nil {
		return nil, err
	}
	return m.decode(ctx, reply)
}

// outgoing gives ctx the call's metadata, as go-kit's client does with
// its ClientBefore functions: new metadata replaces whatever outgoing
// metadata ctx carried. Without any to send or replace, ctx is left as
// it is, which grpc-go treats the same as empty metadata.
func outgoing(ctx context.Context) context.Context {
	_, hasID := requestid.FromContext(ctx)
	_, hasKey := ctx.Value(keyCtx{}).(string)
	if _, had := metadata.FromOutgoingContext(ctx); !hasID && !hasKey && !had {
		return ctx
	}
	md := metadata.MD{}
	ctx = propagateKey(propagateRequestID(ctx, &md), &md)
	return metadata.NewOutgoingContext(ctx, md)
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

// keyCtx carries a keyed call's idempotency key from the endpoint to
// every attempt's metadata.
type keyCtx struct{}

// propagateKey sends a keyed call's idempotency key as metadata.
func propagateKey(ctx context.Context, md *metadata.MD) context.Context {
	if k, ok := ctx.Value(keyCtx{}).(string); ok {
		md.Set(grpctransport.IdempotencyKey, k)
	}
	return ctx
}
