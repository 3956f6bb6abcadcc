package breaker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/warren-mesh/warren/framework/svcerr"
)

func TestNew_OpensAfterFailuresAndAnswersUnavailableWithoutCalling(t *testing.T) {
	calls := 0
	fail := errors.New("ledger down")
	e := New(gobreaker.Settings{Name: "ledger", Timeout: time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 }})(
		func(context.Context, any) (any, error) { calls++; return nil, fail })
	for range 3 {
		if _, err := e(context.Background(), nil); !errors.Is(err, fail) {
			t.Fatalf("closed breaker: err = %v, want the endpoint's", err)
		}
	}
	_, err := e(context.Background(), nil)
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.Unavailable || se.Code != Code {
		t.Fatalf("open breaker: err = %v, want Unavailable %s", err, Code)
	}
	if calls != 3 {
		t.Fatalf("endpoint called %d times, want 3 (none while open)", calls)
	}
}

// Answers about the request, or a method the service has not written
// (svcgen's stubs), say nothing about the endpoint's health.
func TestNew_BusinessErrorsDoNotTrip(t *testing.T) {
	for _, answer := range []*svcerr.Error{
		svcerr.New(svcerr.NotFound, "x_not_found", "no"),
		svcerr.New(svcerr.Unimplemented, "not_implemented", "X is not implemented yet"),
	} {
		e := New(gobreaker.Settings{Name: "x", ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})(
			func(context.Context, any) (any, error) { return nil, answer })
		for range 5 {
			if _, err := e(context.Background(), nil); !errors.Is(err, answer) {
				t.Fatalf("err = %v, want %s every time (the breaker must stay closed)", err, answer.Code)
			}
		}
	}
}

// The package doc's list: Unavailable, DeadlineExceeded, Internal and
// non-svcerr errors are failures; every other kind is an answer.
func TestHealthy_CountsOnlyEndpointFailures(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{errors.New("conn refused"), false},
		{svcerr.New(svcerr.Unavailable, "x", "x"), false},
		{svcerr.New(svcerr.DeadlineExceeded, "x", "x"), false},
		{svcerr.New(svcerr.Internal, "x", "x"), false},
		{fmt.Errorf("wrapped: %w", svcerr.New(svcerr.Internal, "x", "x")), false},
		{svcerr.New(svcerr.InvalidArgument, "x", "x"), true},
		{svcerr.New(svcerr.NotFound, "x", "x"), true},
		{svcerr.New(svcerr.PermissionDenied, "x", "x"), true},
		{svcerr.Exhausted("x", "x", time.Second), true},
	} {
		if got := Healthy(c.err); got != c.want {
			t.Errorf("Healthy(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Half-open lets MaxRequests probes through; a call beyond them is
// refused like an open breaker's: Unavailable breaker_open, which the
// client answers by trying another instance.
func TestMiddleware_HalfOpenExtraCallIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "x", MaxRequests: 1, Timeout: time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }, IsSuccessful: Healthy})
	fail := true
	entered, release := make(chan struct{}), make(chan struct{})
	e := Middleware(cb)(func(context.Context, any) (any, error) {
		if fail {
			return nil, errors.New("down")
		}
		close(entered)
		<-release
		return "ok", nil
	})
	e(ctx, nil) // trips
	for cb.State() != gobreaker.StateHalfOpen {
		if ctx.Err() != nil {
			t.Fatal("breaker never went half-open")
		}
		time.Sleep(time.Millisecond)
	}
	fail = false
	probe := make(chan error, 1)
	go func() { _, err := e(ctx, nil); probe <- err }()
	<-entered
	_, err := e(ctx, nil)
	close(release)
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.Unavailable || se.Code != Code {
		t.Fatalf("second half-open call: err = %v, want Unavailable %s", err, Code)
	}
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
}
