package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/retry"
)

// Bad option values, the client's own and those of the retry and outlier
// options it takes, fail New and NewFromInstancer with an error naming the
// option; nothing is left running.
func TestNew_RefusesBadOptionValues(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	for name, o := range map[string]Option{
		"client.WithMaxResponseBytes":     WithMaxResponseBytes(0),
		"client.WithBalancer":             WithBalancer(nil),
		"client.WithSnapshot":             WithSnapshot(""),
		"retry.WithMaxAttempts":           WithRetry(retry.WithMaxAttempts(0)),
		"outlier.WithConsecutiveFailures": WithOutlier(outlier.WithConsecutiveFailures(-1)),
		"outlier.WithCooldown":            WithOutlier(outlier.WithCooldown(time.Minute, time.Second)),
	} {
		if _, err := New(context.Background(), reg, "svc", o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, want an error naming it", name, err)
		}
		if _, err := NewFromInstancer(sd.FixedInstancer{}, "svc", o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: NewFromInstancer = %v, want an error naming it", name, err)
		}
	}
}

// WithSnapshot is New's: NewFromInstancer takes its instancer as is, so it
// refuses the option rather than ignore it.
func TestNewFromInstancer_RefusesWithSnapshot(t *testing.T) {
	_, err := NewFromInstancer(sd.FixedInstancer{}, "svc", WithSnapshot(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "client.WithSnapshot applies to New") {
		t.Fatalf("NewFromInstancer(WithSnapshot) = %v; want it refused, naming the option", err)
	}
}

// Nil and empty arguments are errors, not panics (a tester's client.New
// with a nil registry, and a call on a nil *Client, panicked).
func TestNew_RefusesNilAndEmptyArguments(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	for name, f := range map[string]func() error{
		"nil discovery": func() error { _, err := New(context.Background(), nil, "svc"); return err },
		"empty service": func() error { _, err := New(context.Background(), reg, ""); return err },
		"nil instancer": func() error { _, err := NewFromInstancer(nil, "svc"); return err },
		"empty service (instancer)": func() error {
			_, err := NewFromInstancer(sd.FixedInstancer{}, "")
			return err
		},
		"nil client": func() error {
			var c *Client
			_, err := Call[struct{}, struct{}](context.Background(), c, "GET", "/x", struct{}{})
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
