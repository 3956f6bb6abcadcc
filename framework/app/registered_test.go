package app

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

func TestRun_PublishesWhenItRegistered(t *testing.T) {
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	j := &journal{}
	reg := memory.New()
	a, err := New("svc", okHandler(), reg, testOptions(j)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	got := reg.Instances("svc")
	if len(got) != 1 {
		t.Fatalf("registered %+v", got)
	}
	at, err := time.Parse(time.RFC3339, got[0].Metadata[RegisteredMetadataKey])
	if err != nil {
		t.Fatalf("metadata %q = %q: %v", RegisteredMetadataKey, got[0].Metadata[RegisteredMetadataKey], err)
	}
	if at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("registered at %s, want between %s and now", at, before)
	}
	if a.Instance().Metadata[RegisteredMetadataKey] != got[0].Metadata[RegisteredMetadataKey] {
		t.Errorf("App.Instance() = %+v, want the registered record", a.Instance())
	}
}

func TestRun_KeepsARegisteredTimeTheServiceSet(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	a, err := New("svc", okHandler(), reg, testOptions(j, WithMetadata(map[string]string{RegisteredMetadataKey: "2020-01-02T03:04:05Z"}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	if got := reg.Instances("svc"); len(got) != 1 || got[0].Metadata[RegisteredMetadataKey] != "2020-01-02T03:04:05Z" {
		t.Fatalf("registered %+v", got)
	}
}
