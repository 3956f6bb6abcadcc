// Package etcdcluster runs a real multi-member etcd cluster for tests and
// benchmarks, one OS process per member, so that killing a member is a
// crash (SIGKILL), not a graceful Close. The members are the calling
// program re-executed: a test's TestMain (or bench's main) calls
// RunIfMember first, which turns that process into a member when the
// cluster started it and returns at once otherwise.
//
// Every member listens on 127.0.0.1 only, on free ports. Peer traffic goes
// through a proxy in front of each member (see Cluster.Partition), so a
// test can cut one member off from the others while clients still reach it.
package etcdcluster

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// EnvMember names the variable that carries a member's settings (JSON) to
// the re-executed process.
const EnvMember = "WARREN_ETCDCLUSTER_MEMBER"

// memberSpec is what a member process needs to start.
type memberSpec struct {
	Name           string `json:"name"`
	Dir            string `json:"dir"`
	ClientURL      string `json:"client_url"`
	PeerListenURL  string `json:"peer_listen_url"`
	PeerAdvertise  string `json:"peer_advertise_url"`
	InitialCluster string `json:"initial_cluster"`
	State          string `json:"state"` // "new" or "existing"
	Token          string `json:"token"`
}

// RunIfMember makes this process an etcd member and never returns when
// $WARREN_ETCDCLUSTER_MEMBER is set; otherwise it returns at once. Call it
// first thing in TestMain or main.
func RunIfMember() {
	spec := os.Getenv(EnvMember)
	if spec == "" {
		return
	}
	if err := runMember(spec); err != nil {
		fmt.Fprintln(os.Stderr, "etcdcluster member:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runMember(raw string) error {
	var s memberSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fmt.Errorf("bad %s: %w", EnvMember, err)
	}
	cu, err := url.Parse(s.ClientURL)
	if err != nil {
		return err
	}
	pl, err := url.Parse(s.PeerListenURL)
	if err != nil {
		return err
	}
	pa, err := url.Parse(s.PeerAdvertise)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = s.Name
	cfg.Dir = s.Dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pl}
	cfg.AdvertisePeerUrls = []url.URL{*pa}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = s.InitialCluster
	cfg.InitialClusterToken = s.Token
	cfg.ClusterState = s.State
	// etcd's default heartbeat and election timeout (100 ms, 1 s): shorter
	// ones make a loaded 2-core machine (members built with -race) hold
	// elections by itself. No fsync: a test cluster's durability is the
	// page cache's.
	cfg.TickMs = 100
	cfg.ElectionMs = 1000
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.LogLevel = "info" // elections and peer trouble, in the slot's log file
	cfg.LogOutputs = []string{"stderr"}

	var e *embed.Etcd
	for attempt := 0; ; attempt++ { // a just-released port may linger briefly
		if e, err = embed.StartEtcd(cfg); err == nil || attempt == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		e.Close()
		return nil
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("%s: %w", s.Name, err)
	}
}
