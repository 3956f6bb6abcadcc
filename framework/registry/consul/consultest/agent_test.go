package consultest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func mgmtToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// aclConfig turns ACLs on, denying by default, with mgmt as the initial
// management token.
func aclConfig(mgmt string) string {
	return fmt.Sprintf(`
acl {
  enabled = true
  default_policy = "deny"
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, mgmt, mgmt)
}

// With WithManagementToken, Start returns once the ACL system takes the
// management token: a request that needs it succeeds at once, not with
// "403 ACL system must be bootstrapped" (report j48c 7b). Several starts,
// as the window after the election is short.
func TestStart_WaitsForTheManagementToken(t *testing.T) {
	if Skipped() {
		t.Skipf("%s=1", SkipEnv)
	}
	mgmt := mgmtToken(t)
	a, err := New(WithExtraConfig(aclConfig(mgmt)), WithManagementToken(mgmt))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := a.Restart(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, "http://"+a.Addr()+"/v1/acl/policy",
			strings.NewReader(fmt.Sprintf(`{"Name":"p%d","Rules":"node_prefix \"\" { policy = \"read\" }"}`, i)))
		req.Header.Set("X-Consul-Token", mgmt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("start %d: a policy create right after Start: %s %s", i+1, resp.Status, body)
		}
	}
}
