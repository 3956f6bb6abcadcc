package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

func TestError_Classification(t *testing.T) {
	quota, _ := status.New(codes.ResourceExhausted, "quota").WithDetails()
	for name, tc := range map[string]struct {
		err             *Error
		class           retry.Class
		instanceFailure bool
		hold, delay     bool
		pending         bool
	}{
		"unavailable mid-call":  {&Error{Status: status.New(codes.Unavailable, "error reading from server: EOF")}, retry.MaybeProcessed, true, false, false, false},
		"unavailable, not sent": {&Error{Status: status.New(codes.Unavailable, "x"), NotSent: true}, retry.Unprocessed, true, false, false, false},
		// A handler's svcerr.Unavailable may follow its effects.
		"handler's unavailable": {&Error{Status: grpctransport.Status(svcerr.New(svcerr.Unavailable, "ledger_down", "ledger down"))}, retry.MaybeProcessed, true, false, false, false},
		// svcerr.Exhausted (a rate limit) carries its delay as a RetryInfo.
		"handler's rate limit": {&Error{Status: grpctransport.Status(svcerr.Exhausted("rate_limited", "slow down", time.Second))}, retry.Unprocessed, false, false, true, false},
		// Another service's refusals, passed on: the server may have acted.
		"overload passed on":        {&Error{Status: grpctransport.Status(fmt.Errorf("x: %w", svcerr.Peer(svcerr.Unavailable, svcerr.CodeOverloaded, "server overloaded", time.Second)))}, retry.MaybeProcessed, true, false, false, false},
		"quota passed on":           {&Error{Status: grpctransport.Status(svcerr.Peer(svcerr.ResourceExhausted, "quota", "quota used", time.Second))}, retry.MaybeProcessed, false, false, true, false},
		"key in progress passed on": {&Error{Status: grpctransport.Status(svcerr.Peer(svcerr.Unavailable, idempotency.CodeInProgress, "in progress", 0))}, retry.MaybeProcessed, true, false, false, false},
		"overloaded":                {&Error{Status: grpctransport.OverloadStatus(2 * time.Second)}, retry.Unprocessed, false, true, false, false},
		"key in progress":           {&Error{Status: grpctransport.Status(idempotency.ErrInProgress)}, retry.Unprocessed, false, false, true, true},
		"quota with retry info":     {&Error{Status: withRetry(quota, 2*time.Second)}, retry.Unprocessed, false, false, true, false},
		"handler's too large":       {&Error{Status: grpctransport.Status(svcerr.New(svcerr.TooLarge, "batch_too_large", "m"))}, retry.Fatal, false, false, false, false}, // an answer, as HTTP's 413 (j53c 3)
		"too large passed on":       {&Error{Status: grpctransport.Status(svcerr.Peer(svcerr.TooLarge, "batch_too_large", "m", 0))}, retry.Fatal, false, false, false, false},
		"grpc-go's size limit":      {&Error{Status: status.New(codes.ResourceExhausted, "grpc: received message larger than max (5242885 vs. 4194304)")}, retry.Fatal, false, false, false, false},
		"deadline":                  {&Error{Status: status.New(codes.DeadlineExceeded, "d")}, retry.MaybeProcessed, true, false, false, false},
		"not found":                 {&Error{Status: grpctransport.Status(svcerr.New(svcerr.NotFound, "nf", "m"))}, retry.Fatal, false, false, false, false},
		"internal":                  {&Error{Status: grpctransport.Status(errors.New("x"))}, retry.Fatal, true, false, false, false},
		"method not written yet":    {&Error{Status: grpctransport.Status(svcerr.New(svcerr.Unimplemented, "not_implemented", "Refund is not implemented yet"))}, retry.Fatal, false, false, false, false},
		// The server has no such method or service (an instance of the
		// previous release, in a rolling deploy): nothing ran, so any call
		// goes elsewhere and the instance is not held guilty; Warren's
		// answer, and grpc-go's own from a server without it.
		"unknown method, Warren's":  {&Error{Status: grpctransport.UnknownMethodStatus("shop.Payment", "Refund", true)}, retry.Unprocessed, false, false, false, false},
		"unknown service, Warren's": {&Error{Status: grpctransport.UnknownMethodStatus("shop.Payment", "Refund", false)}, retry.Unprocessed, false, false, false, false},
		"unknown method, grpc-go's": {&Error{Status: status.New(codes.Unimplemented, "unknown method Refund for service shop.Payment")}, retry.Unprocessed, false, false, false, false},
		"no such service here":      {&Error{Status: status.New(codes.Unimplemented, "unknown service shop.Payment")}, retry.Unprocessed, false, false, false, false},
		// A plain handler's UNIMPLEMENTED stays what it was: an answer that
		// counts; another service's unknown method passed on followed this
		// server's work.
		"handler's raw unimplemented": {&Error{Status: status.New(codes.Unimplemented, "not here")}, retry.Fatal, true, false, false, false},
		"unknown method passed on":    {&Error{Status: grpctransport.Status(svcerr.Peer(svcerr.Unimplemented, grpctransport.CodeUnknownMethod, "unknown method Refund for service shop.Payment", 0))}, retry.Fatal, false, false, false, false},
		"canceled by the caller":      {&Error{Status: status.New(codes.Canceled, "c")}, retry.Fatal, false, false, false, false},
	} {
		if got := tc.err.RetryClass(); got != tc.class {
			t.Errorf("%s: RetryClass %s, want %s", name, got, tc.class)
		}
		if got := tc.err.InstanceFailure(); got != tc.instanceFailure {
			t.Errorf("%s: InstanceFailure %v, want %v", name, got, tc.instanceFailure)
		}
		if got := tc.err.OverloadHold() > 0; got != tc.hold {
			t.Errorf("%s: OverloadHold %s", name, tc.err.OverloadHold())
		}
		if got := tc.err.RetryDelay() > 0; got != tc.delay {
			t.Errorf("%s: RetryDelay %s", name, tc.err.RetryDelay())
		}
		if got, want := tc.err.Refused(), name == "handler's rate limit" || name == "quota with retry info" || tc.class == retry.Unprocessed && status.Code(tc.err) == codes.Unimplemented; got != want {
			t.Errorf("%s: Refused %v, want %v", name, got, want)
		}
		if got := tc.err.RetryPending(); got != tc.pending {
			t.Errorf("%s: RetryPending %v, want %v", name, got, tc.pending)
		}
	}
	dl := &Error{Status: status.New(codes.DeadlineExceeded, "d")}
	if !errors.Is(dl, context.DeadlineExceeded) || status.Code(dl) != codes.DeadlineExceeded {
		t.Error("DEADLINE_EXCEEDED does not match context.DeadlineExceeded")
	}
	if !errors.Is(&Error{Status: grpctransport.OverloadStatus(time.Second)}, svcerr.ErrOverloaded) {
		t.Error("an overload does not match svcerr.ErrOverloaded")
	}
	if !notSentMessage(`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`) ||
		notSentMessage("error reading from server: EOF") {
		t.Error("notSentMessage misreads grpc-go's statuses")
	}
}

func withRetry(st *status.Status, d time.Duration) *status.Status {
	o := grpctransport.OverloadStatus(d) // borrow its RetryInfo, drop its ErrorInfo
	p := st.Proto()
	for _, a := range o.Proto().GetDetails() {
		if a.GetTypeUrl() == "type.googleapis.com/google.rpc.RetryInfo" {
			p.Details = append(p.Details, a)
		}
	}
	return status.FromProto(p)
}
