// Package grpctest has a minimal gRPC service for tests of the gRPC
// transport, client and resolver: no protoc needed (its messages are
// protobuf's StringValue, its service descriptor is written by hand). It
// is test infrastructure, not a service to deploy.
//
// Say answers by the request's text:
//
//	"id"                 the server's id (to see which instance answered)
//	"sleep:<duration>"   waits that long (or until the call ends), then "ok"
//	"fail:<kind>:<code>" a *svcerr.Error of that kind and code
//	"panic"              panics
//	"on:<id>:<request>"  as <request> on the server with that id, else as "id"
//	anything else        echoed back
package grpctest

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// SayMethod is the full method name of Echo.Say.
const SayMethod = "/warren.test.v1.Echo/Say"

// Echo is the service; Calls counts the calls it answered.
type Echo struct {
	ID    string
	Calls atomic.Int64
}

// Register registers an Echo answering with id on g and returns it.
func Register(g grpc.ServiceRegistrar, id string) *Echo {
	e := &Echo{ID: id}
	g.RegisterService(&serviceDesc, e)
	return e
}

// Say answers one request; see the package doc.
func (e *Echo) Say(ctx context.Context, in string) (string, error) {
	e.Calls.Add(1)
	switch {
	case in == "id":
		return e.ID, nil
	case strings.HasPrefix(in, "on:"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(in, "on:"), ":")
		if id == e.ID {
			e.Calls.Add(-1) // counted once, below
			return e.Say(ctx, rest)
		}
		return e.ID, nil
	case in == "panic":
		panic("grpctest: asked to panic")
	case strings.HasPrefix(in, "sleep:"):
		d, err := time.ParseDuration(strings.TrimPrefix(in, "sleep:"))
		if err != nil {
			return "", svcerr.New(svcerr.InvalidArgument, "bad_duration", err.Error())
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return "ok", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	case strings.HasPrefix(in, "fail:"):
		kind, code, _ := strings.Cut(strings.TrimPrefix(in, "fail:"), ":")
		return "", svcerr.New(svcerr.Kind(kind), code, "asked to fail")
	}
	return in, nil
}

// Say calls Echo.Say over cc.
func Say(ctx context.Context, cc grpc.ClientConnInterface, in string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, SayMethod, wrapperspb.String(in), out, opts...); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

type sayer interface {
	Say(context.Context, string) (string, error)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "warren.test.v1.Echo",
	HandlerType: (*sayer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Say",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, r any) (any, error) {
				out, err := srv.(sayer).Say(ctx, r.(*wrapperspb.StringValue).GetValue())
				if err != nil {
					return nil, err
				}
				return wrapperspb.String(out), nil
			}
			if in == nil {
				return call(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: SayMethod}, call)
		},
	}},
	Metadata: "warren/test/v1/echo.proto",
}
