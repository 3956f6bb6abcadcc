package grpcclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// An overload holds the instance out for half to all of its RetryInfo,
// capped at 5 s, and 1 s without one (OverloadHold's doc, as HTTP's).
func TestError_OverloadHoldDefaultAndCap(t *testing.T) {
	noInfo, err := status.New(codes.ResourceExhausted, "overloaded").WithDetails(&errdetails.ErrorInfo{
		Reason: svcerr.CodeOverloaded, Domain: grpctransport.ErrorDomain, Metadata: map[string]string{"kind": string(svcerr.Unavailable)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		st     *status.Status
		lo, hi time.Duration
	}{
		{noInfo, 500 * time.Millisecond, time.Second},
		{grpctransport.OverloadStatus(30 * time.Second), 2500 * time.Millisecond, 5 * time.Second},
	} {
		e := &Error{Status: c.st}
		for range 100 {
			if d := e.OverloadHold(); d < c.lo || d > c.hi {
				t.Fatalf("RetryInfo %v: hold %v, want within [%v, %v]", grpctransport.RetryAfter(c.st), d, c.lo, c.hi)
			}
		}
	}
}

// A Warren server's UNAVAILABLE "overloaded" (not passed on) is the
// instance being full, not broken: no failure of the instance.
func TestError_UnavailableOverloadedIsNoInstanceFailure(t *testing.T) {
	st, err := status.New(codes.Unavailable, "server overloaded").WithDetails(&errdetails.ErrorInfo{
		Reason: svcerr.CodeOverloaded, Domain: grpctransport.ErrorDomain, Metadata: map[string]string{"kind": string(svcerr.Unavailable)}})
	if err != nil {
		t.Fatal(err)
	}
	if (&Error{Status: st}).InstanceFailure() {
		t.Error("an UNAVAILABLE overloaded answer counts against the instance")
	}
}

// A CANCELED status matches context.Canceled on the caller's side (the
// Error's doc).
func TestError_CanceledMatchesContextCanceled(t *testing.T) {
	if e := (&Error{Status: status.New(codes.Canceled, "c")}); !errors.Is(e, context.Canceled) {
		t.Error("CANCELED does not match context.Canceled")
	}
}
