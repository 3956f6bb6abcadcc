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

func TestNew_BusinessErrorsDoNotTrip(t *testing.T) {
	notFound := svcerr.New(svcerr.NotFound, "x_not_found", "no")
	e := New(gobreaker.Settings{Name: "x", ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})(
		func(context.Context, any) (any, error) { return nil, notFound })
	for range 5 {
		if _, err := e(context.Background(), nil); !errors.Is(err, notFound) {
			t.Fatalf("err = %v, want not found every time (the breaker must stay closed)", err)
		}
	}
}
