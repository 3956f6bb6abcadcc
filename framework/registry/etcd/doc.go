// Package etcd is the etcd v3 backend of Warren's service registry.
//
// # Key layout
//
// Each running instance is one key,
//
//	/<prefix>/services/<name>/<instance-id>
//
// (prefix "warren" by default) whose value is registry.EncodeRecord JSON and
// which is attached to a lease owned by the registering process. Instance
// IDs are stable across restarts (registry.DefaultID), so a restarted
// process overwrites its own old record instead of leaving a zombie beside
// it.
//
// # Registrar
//
// Register grants a lease (TTL 10 s by default), claims the key in a
// transaction and returns once the record is published. A background loop
// owned by the Registry then keeps it published: it runs the lease
// keepalive and watches its own key, and when the keepalive channel closes
// (lease expired or revoked, no leader, etcd unreachable for a TTL) or the
// key is deleted, it grants a new lease and writes the record again, forever,
// with jittered exponential backoff. Status reports registered or retrying
// with the last error, and counts re-registrations.
//
// A claim never silently steals an ID: if the key holds a live record of a
// different address, Register fails with an error wrapping
// registry.ErrConflict that names both addresses. A record of the same
// address is taken over at once, since it can only be a previous run of this
// process whose lease has not expired yet.
//
// Deregister deletes the key in a transaction guarded by the process's own
// lease and then revokes the lease; Close revokes it. Either way the key goes
// only while our lease still holds it: an old process shutting down after a
// new one took over its ID never deletes the newer record.
//
// # Instancer
//
// Instancer lists the service's keys once and then watches from the next
// revision, applying each event to a local map, so no change is missed and
// no event costs a re-read of the prefix. A watch that ends (disconnect,
// lost leader, compaction) or a reconnect of the client's connection leads to
// a full re-list diffed against the local set, and so does a cluster ID or
// revision that goes backwards (etcd restored from a snapshot). While etcd
// cannot be read the instancer keeps serving the last good set, sent with
// the error. Unreadable records are skipped with a logged warning.
//
// # One client
//
// The registrar and every instancer of a Registry share one
// clientv3.Client: one TCP connection, one TLS handshake, one auth token,
// and one goroutine watching the connection (which tells every instancer
// when it is lost and when it is back, so each re-lists). A process has one
// Registry (bootstrap opens it), so it holds one etcd connection however
// many services it calls; WithClient shares a caller's client between
// several Registries too. gRPC multiplexes the watch and keepalive streams
// over that connection. go-kit's sd/etcdv3 also shares a client, but its
// Register and Deregister close the client's watcher under a running
// instancer, which then never sees another change; here nothing but Close
// touches the client, and Stop of an instancer only ends its own watch.
package etcd
