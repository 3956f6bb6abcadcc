// Package zookeeper is the Apache ZooKeeper backend of Warren's service
// registry, over github.com/go-zookeeper/zk (v1.0.4, run from the copy in
// internal/zk that fixes a data race of its connection loop; see there).
//
// # Znode layout
//
// Each running instance is one ephemeral znode,
//
//	<root>/services/<name>/<instance-id>
//
// (root "/warren" by default) whose data is registry.EncodeRecord JSON, the
// same record etcd stores. The parents are persistent and created on
// demand. An ephemeral znode lives as long as the session that created it:
// a process that dies leaves discovery when ZooKeeper expires its session,
// one session timeout (default 10 s) after it last heard from it.
//
// # Registrar
//
// Register creates the znode and returns once it is written. A loop owned
// by the Registry then keeps it: it watches its own znode (re-armed after
// every event) and the session, and writes the znode again — forever, with
// jittered backoff — when it is deleted by hand, when the session expired
// (a new session has none of the old one's znodes), or when the connection
// comes back after an outage longer than the session timeout. While the
// connection is down for less than that, the session and the znode may
// well survive (ZooKeeper keeps both for the session timeout, across a
// server restart too), so the state stays registered; after a whole
// session timeout without contact it turns retrying, since ZooKeeper has
// then expired the session, and /readyz says so.
//
// A claim never silently steals an ID: if the znode belongs to a live
// session with a different address, Register fails with an error wrapping
// registry.ErrConflict. A znode of the same address is a previous run of
// this instance whose session has not expired yet, and is replaced at
// once; the old process, seeing its znode taken by its own address, stops
// re-registering (it was superseded) and never deletes the newer record.
// Deregister and Close delete the znode only if this session owns it.
//
// Register and Deregister return when their ctx ends, and Close within its
// close timeout, also while ZooKeeper is silent (a partition without
// resets, which the client would notice only at its read deadline, two
// thirds of the session timeout); the error wraps ctx.Err() and says what
// was left undone ("the znode may remain until the session expires").
//
// # Instancer
//
// An instancer watches the service's znode for children and each child
// for data. ZooKeeper watches fire once and are armed by the read that
// returns the state, so each fired watch is followed by the read that
// re-arms it, and a change that happens between the fire and the re-arm is
// in that read: nothing is missed. Watches that end without firing
// (session expired, connection closed) are re-armed the same way, and
// every reconnect re-lists the children. While ZooKeeper cannot be read it
// serves the last good set with the error. Records that are not ephemeral
// (written by hand) or do not match their znode are skipped, counted and
// logged.
//
// # Security
//
// WithDigestAuth authenticates the session with ZooKeeper's digest scheme
// and creates znodes readable by everyone and writable by that user only —
// the shared parents too, so every service of the mesh must use the same
// user, unless an operator creates the parents first and grants create on
// <root>/services to each service's user (docs/registry-zookeeper.md).
// WithTLS connects to a secureClientPort (ZooKeeper's Netty connection
// factory), mutual TLS with a client certificate.
//
// # One session
//
// The registrar and every instancer of a Registry share one session and
// one TCP connection, as an etcd Registry shares one client.
package zookeeper
