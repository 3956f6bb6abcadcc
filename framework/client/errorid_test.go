package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// An instance's error answer names it by registry ID and address, as the
// ejection lines and the mesh page name it (report j57b F3: the caller's
// error lines gave only the address); errors.As still finds the *Error
// under a caller's wrap.
func TestCall_ErrorAnswerNamesTheInstanceByIDAndAddress(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode500)
	c := newClient(t, newRegistry(t, b.inst))
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	_, err := Call[echoReq, echoResp](ctx, c, "GET", "/users/7", echoReq{})
	wrapped := svcerr.Wrap(svcerr.Unavailable, "users_down", "user service unavailable, order not placed", err)
	var e *Error
	if !errors.As(wrapped, &e) || e.ID != b.inst.ID || e.Instance != b.inst.HostPort() {
		t.Fatalf("err %v: want an *Error with ID %s and address %s", err, b.inst.ID, b.inst.HostPort())
	}
	if want := b.inst.ID + " (" + b.inst.HostPort() + "): 500 internal"; !strings.Contains(wrapped.Error(), want) {
		t.Fatalf("error text %q lacks %q", wrapped.Error(), want)
	}
}
