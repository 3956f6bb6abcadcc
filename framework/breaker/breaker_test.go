package breaker

import (
	"context"
	"errors"
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
