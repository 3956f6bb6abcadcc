package grpcclient_test

import (
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
)

// A keyed method is retried like an idempotent one: after a handler's
// UNAVAILABLE (which may follow its effects) it goes to the other
// instance; a method neither keyed nor idempotent ends with the answer.
func TestClient_KeyedMethodIsRetriedLikeAnIdempotentOne(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{a.instance("a"), b.instance("b")}, "echo",
		grpcclient.WithClientOptions(client.WithBalancer(newFirstPick()), client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const failOnA = "on:a:fail:unavailable:ledger_down"
	if got, err := say(c, grpcclient.Keyed())(ctx30(t), failOnA); err != nil || got != "b" {
		t.Fatalf("keyed call with a failing = %q, %v; want b's answer", got, err)
	}
	if _, err := say(c)(ctx30(t), failOnA); err == nil {
		t.Fatal("a call neither keyed nor idempotent was retried after a handler's UNAVAILABLE")
	}
}
