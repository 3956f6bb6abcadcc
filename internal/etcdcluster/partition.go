package etcdcluster

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// network decides which peer messages may pass. etcd's peer messages are
// HTTP requests (raft streams and pipelines) that name their sender in
// X-Server-From; a member is cut off when every request it sends or that
// is sent to it is refused, and the long-lived streams it already had are
// ended. A plain TCP proxy in front of each member could not do that: a
// member receives much of its traffic on connections it dialled itself.
type network struct {
	mu     sync.Mutex
	cut    map[string]bool // member IDs (hex) cut off
	active map[*flow]struct{}
}

// flow is one proxied request, to be ended if its sender or receiver is cut.
type flow struct {
	from, to string
	cancel   context.CancelFunc
}

func newNetwork() *network {
	return &network{cut: map[string]bool{}, active: map[*flow]struct{}{}}
}

// setCut cuts the member id off (or heals it) and ends its flows.
func (n *network) setCut(id string, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !cut {
		delete(n.cut, id)
		return
	}
	n.cut[id] = true
	for f := range n.active {
		if f.from == id || f.to == id {
			f.cancel()
		}
	}
}

// begin registers a flow, or reports that it may not pass.
func (n *network) begin(f *flow) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[f.from] || n.cut[f.to] {
		return false
	}
	n.active[f] = struct{}{}
	return true
}

func (n *network) end(f *flow) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.active, f)
}

// peerProxy listens on a member's advertised peer address and forwards to
// its real peer listener, through the network's rules.
type peerProxy struct {
	net *network
	ln  net.Listener
	srv *http.Server
	tr  *http.Transport

	mu sync.Mutex
	to string // the member's ID (hex); "" until known
}

func startPeerProxy(n *network, ln net.Listener, target string) *peerProxy {
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // raft streams: pass every write at once
	rp.ErrorLog = log.New(io.Discard, "", 0)
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}
	rp.Transport = tr
	p := &peerProxy{net: n, ln: ln, tr: tr}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			to := p.to
			p.mu.Unlock()
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			f := &flow{from: r.Header.Get("X-Server-From"), to: to, cancel: cancel}
			if !n.begin(f) {
				panic(http.ErrAbortHandler) // drop the connection, as a cut network would
			}
			defer n.end(f)
			rp.ServeHTTP(w, r.WithContext(ctx))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = p.srv.Serve(ln) }() // owned by the proxy: ends at close
	return p
}

// setMember records the ID of the member behind the proxy.
func (p *peerProxy) setMember(id string) {
	p.mu.Lock()
	p.to = id
	p.mu.Unlock()
}

func (p *peerProxy) close() {
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}
