package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Every kind crosses the wire and comes back the same kind and code, so
// errors.Is holds on the caller's side, even for the kinds that share a
// status code (too_large and resource_exhausted).
func TestStatus_EveryKindRoundTrips(t *testing.T) {
	for kind, code := range kindCode {
		sentinel := svcerr.New(kind, "my_"+string(kind), "boom")
		st := Status(fmt.Errorf("wrapped: %w", sentinel))
		if st.Code() != code {
			t.Errorf("%s: code %s, want %s", kind, st.Code(), code)
		}
		// Through the wire format and back.
		back := FromStatus(status.Convert(st.Err()))
		if !errors.Is(back, sentinel) {
			t.Errorf("%s: rebuilt %#v does not match the sentinel", kind, back)
		}
		if kind == svcerr.Internal && back.Message != "internal error" {
			t.Errorf("internal error's text crossed the wire: %q", back.Message)
		}
	}
}

func TestStatus_OtherErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
		kind svcerr.Kind
	}{
		{errors.New("secret detail"), codes.Internal, svcerr.Internal},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, svcerr.DeadlineExceeded},
		{context.Canceled, codes.Canceled, svcerr.Internal},
		{status.Error(codes.Unauthenticated, "who"), codes.Unauthenticated, svcerr.Unauthenticated},
		{svcerr.ErrOverloaded, codes.ResourceExhausted, svcerr.Unavailable},
	} {
		st := Status(tc.err)
		if st.Code() != tc.code {
			t.Errorf("Status(%v) = %s, want %s", tc.err, st.Code(), tc.code)
		}
		if k := FromStatus(st).Kind; k != tc.kind {
			t.Errorf("FromStatus(Status(%v)).Kind = %s, want %s", tc.err, k, tc.kind)
		}
		if st.Code() == codes.Internal && st.Message() != "internal error" {
			t.Errorf("internal error's text is sent: %q", st.Message())
		}
	}
	if !errors.Is(FromStatus(Status(svcerr.ErrOverloaded)), svcerr.ErrOverloaded) {
		t.Error("overload does not round-trip")
	}
	if Status(nil).Code() != codes.OK {
		t.Error("Status(nil) is not OK")
	}
}

// A status from a server that is not Warren's (no ErrorInfo) maps by code.
func TestFromStatus_ForeignStatuses(t *testing.T) {
	for code, kind := range map[codes.Code]svcerr.Kind{
		codes.NotFound: svcerr.NotFound, codes.OutOfRange: svcerr.InvalidArgument, codes.Aborted: svcerr.FailedPrecondition,
		codes.Unavailable: svcerr.Unavailable, codes.Unimplemented: svcerr.Unimplemented, codes.Unknown: svcerr.Internal,
		codes.ResourceExhausted: svcerr.ResourceExhausted, codes.DeadlineExceeded: svcerr.DeadlineExceeded,
	} {
		e := FromStatus(status.New(code, "m"))
		if e.Kind != kind || e.Code != string(kind) || e.Message != "m" {
			t.Errorf("%s: %#v, want kind and code %s", code, e, kind)
		}
	}
	// grpc-go's own size refusal is too_large (HTTP 413), not a quota; a
	// Warren handler's quota keeps its kind whatever its text.
	for _, msg := range []string{"grpc: received message larger than max (2003 vs. 1024)", "trying to send message larger than max (5003 vs. 4096)"} {
		if e := FromStatus(status.New(codes.ResourceExhausted, msg)); e.Kind != svcerr.TooLarge || e.Code != "too_large" {
			t.Errorf("%q: %#v, want kind and code too_large", msg, e)
		}
	}
	if e := FromStatus(Status(svcerr.Exhausted("quota_used", "message larger than max", time.Second))); e.Kind != svcerr.ResourceExhausted || e.Code != "quota_used" {
		t.Errorf("a handler's quota: %#v, want resource_exhausted quota_used", e)
	}
	if Overloaded(status.New(codes.ResourceExhausted, "quota")) {
		t.Error("a plain RESOURCE_EXHAUSTED (a quota) is not an overload")
	}
	if d := RetryAfter(OverloadStatus(3 * time.Second)); d != 3*time.Second {
		t.Errorf("RetryAfter = %s, want 3s", d)
	}
}

// A cause wrapped with svcerr.Wrap stays in the server's logs: the status
// carries the message alone, as over HTTP.
func TestStatus_WrappedCauseIsNotSent(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:9090: connect: connection refused")
	st := Status(fmt.Errorf("charge: %w", svcerr.Wrap(svcerr.Unavailable, "ledger_unavailable", "ledger unavailable", cause)))
	if st.Code() != codes.Unavailable || st.Message() != "charge: ledger unavailable" {
		t.Fatalf("Status = %s %q; want UNAVAILABLE without the cause", st.Code(), st.Message())
	}
	if back := FromStatus(st); back.Code != "ledger_unavailable" || back.Kind != svcerr.Unavailable {
		t.Fatalf("rebuilt %#v", back)
	}
}
