package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun_ExitCodesAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"help"}, 0, "watch SERVICE"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"ls", "-h"}, 0, "--etcd-endpoints"},
		{[]string{"ls", "--registry=nope", "user"}, 2, "unknown registry backend"},
		{[]string{"watch"}, 2, "one SERVICE"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String()+out.String(), tc.want) {
			t.Errorf("warren %q: exit %d, output %q; want exit %d and %q", tc.args, code, errOut.String()+out.String(), tc.code, tc.want)
		}
	}
}
