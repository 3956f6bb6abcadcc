package zookeeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/keeper"
	"github.com/warren-mesh/warren/internal/zk"
)

// registration keeps one instance published: its Keeper runs the
// re-register loop over publish and hold. The Registry starts and stops
// the Keeper.
type registration struct {
	r    *Registry
	inst registry.Instance
	path string
	val  []byte
	k    *keeper.Keeper
}

func newRegistration(r *Registry, inst registry.Instance, p string, val []byte) *registration {
	g := &registration{r: r, inst: inst, path: p, val: val}
	g.k = keeper.New(g, keeper.Config{
		BackoffMin: r.cfg.backoffMin, BackoffMax: r.cfg.backoffMax,
		Logger: r.cfg.logger, Name: []any{"znode", p},
		Report: func(s registry.State, err error, again bool) { r.report(g, s, err, again) },
		// The session, and so our znode, may well survive an outage of
		// the connection: not a lost registration (yet).
		Patient: func(err error) bool { return isConnErr(err) && !r.sess.lost() },
	})
	return g
}

// Publish implements keeper.Record.
func (g *registration) Publish(ctx context.Context, again bool) (bool, error) {
	wrote, err := g.publish(ctx, again)
	return wrote, g.r.withConnectError(err)
}

// Hold implements keeper.Record.
func (g *registration) Hold(ctx context.Context) error { return g.hold(ctx) }

// hold watches our own znode and the session until something needs a
// look: the znode was deleted or changed, the session expired, or the
// connection came back after a long outage. It returns why (nil when ctx
// ends). While the connection is down but the session may still live
// (ZooKeeper keeps it, and our znode, for the session timeout) it waits;
// once the session timeout has passed without contact it reports
// retrying, since the znode is then presumably gone.
func (g *registration) hold(ctx context.Context) error {
	sig, unsubscribe := g.r.sess.subscribe()
	defer unsubscribe()
	lostReported := false
	for {
		sessionID, connected, _ := g.r.sess.state()
		var wch <-chan zk.Event
		if connected {
			exists, stat, ch, err := g.r.conn.ExistsWContext(ctx, g.path)
			switch {
			case ctx.Err() != nil:
				return nil // stopped, possibly with the read abandoned
			case err != nil && !isConnErr(err):
				return fmt.Errorf("watch own znode: %w", err)
			case err != nil:
				// Disconnected meanwhile: wait for the session to say more.
			case !exists:
				return fmt.Errorf("%w: znode missing", keeper.ErrLost)
			default:
				if err := g.stillOurs(ctx, stat, nil); err != nil {
					return err
				}
				if lostReported {
					return nil // back, and the znode survived: registered
				}
				wch = ch
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-wch:
				switch ev.Type {
				case zk.EventNodeDeleted:
					return fmt.Errorf("%w: znode deleted (by hand, or its session ended)", keeper.ErrLost)
				case zk.EventNotWatching:
					if errors.Is(ev.Err, zk.ErrSessionExpired) {
						// The server said so: the znode went with the session.
						return fmt.Errorf("%w: watch ended: %v", keeper.ErrLost, ev.Err)
					}
					return fmt.Errorf("watch ended: %v", ev.Err)
				default:
					return fmt.Errorf("znode changed (%s)", ev.Type)
				}
			case <-sig:
				id, connected, _ := g.r.sess.state()
				switch {
				case connected && id != sessionID:
					return fmt.Errorf("%w: new ZooKeeper session: the old one expired with its ephemeral znodes", keeper.ErrLost)
				case connected && (wch == nil || lostReported):
					// Back within the session: look at the znode now (after
					// a long outage it is in doubt even with a watch armed).
					break wait
				case g.r.sess.lost() && !lostReported:
					// ZooKeeper has surely expired the session by now (it
					// cannot tell us while we cannot reach it): the znode
					// is gone, and /readyz should say so.
					lostReported = true
					g.k.Lost(fmt.Errorf("no contact with ZooKeeper for the session timeout (%s): the session and its znode are presumed expired", g.r.sess.sessionTimeout()))
				}
			}
		}
	}
}

// isConnErr reports errors that say nothing about our znode, only that
// the connection is down (the session may live on).
func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrConnectionClosed)
}

// stillOurs checks the znode at our path: nil if it is this session's
// with our record. data is the znode's data, or nil when not read.
func (g *registration) stillOurs(ctx context.Context, stat *zk.Stat, data []byte) error {
	if stat.EphemeralOwner == g.r.conn.SessionID() {
		if data != nil && !bytes.Equal(data, g.val) {
			return errors.New("our znode's data was changed")
		}
		return nil
	}
	if data == nil {
		var err error
		if data, stat, err = g.r.conn.GetContext(ctx, g.path); err != nil {
			return fmt.Errorf("read own znode: %w", err)
		}
		if stat.EphemeralOwner == g.r.conn.SessionID() {
			return nil
		}
	}
	if other, err := registry.DecodeRecord(data); err == nil && stat.EphemeralOwner != 0 && other.HostPort() == g.inst.HostPort() {
		return fmt.Errorf("%w (session %x)", keeper.ErrSuperseded, stat.EphemeralOwner)
	}
	return fmt.Errorf("znode taken by session %x", stat.EphemeralOwner)
}

// publish makes our znode hold our record under this session: it creates
// it (and its parents), rewrites our own znode's data if it differs, or
// replaces a znode that may be replaced (see mayReplace). created reports
// whether it wrote a new znode. reclaim is set when the znode was lost
// after being published: another session's record of our address is then
// a newer run of this instance, which keeps it (keeper.ErrSuperseded).
//
// Every request ends when ctx does (the Keeper's, which Stop cancels): a
// silent server — a partition without resets — would otherwise hold it
// until the client's read deadline, two thirds of the session timeout.
func (g *registration) publish(ctx context.Context, reclaim bool) (created bool, err error) {
	if err := g.r.ensureAuth(ctx); err != nil {
		return false, err
	}
	conn := g.r.conn
	// Three rounds cover a znode that changes between our read and our
	// write; more would mean someone is fighting us.
	for range 3 {
		_, err := conn.CreateContext(ctx, g.path, g.val, zk.FlagEphemeral, g.r.acl)
		if errors.Is(err, zk.ErrNoNode) {
			if err := g.createParents(ctx); err != nil {
				return false, err
			}
			_, err = conn.CreateContext(ctx, g.path, g.val, zk.FlagEphemeral, g.r.acl)
		}
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return false, fmt.Errorf("zookeeper: create %s: %w", g.path, g.r.explainNoAuth(ctx, path.Dir(g.path), zk.PermCreate, err))
		}
		data, stat, err := conn.GetContext(ctx, g.path)
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone between the create and the get
		}
		if err != nil {
			return false, fmt.Errorf("zookeeper: read %s: %w", g.path, err)
		}
		if stat.EphemeralOwner == conn.SessionID() {
			if bytes.Equal(data, g.val) {
				return false, nil
			}
			// Our own znode with an older record: replace it in place, so
			// watchers never see the instance missing.
			if _, err := conn.SetContext(ctx, g.path, g.val, stat.Version); errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
				continue
			} else if err != nil {
				return false, fmt.Errorf("zookeeper: update %s: %w", g.path, err)
			}
			return false, nil
		}
		if err := g.mayReplace(stat, data, reclaim); err != nil {
			return false, err
		}
		if err := conn.DeleteContext(ctx, g.path, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
			return false, fmt.Errorf("zookeeper: replace %s: %w", g.path, g.r.explainNoAuth(ctx, path.Dir(g.path), zk.PermDelete, err))
		}
	}
	return false, fmt.Errorf("zookeeper: %s kept changing while being claimed", g.path)
}

// mayReplace decides whether a znode of another session (or none) at our
// path may be replaced.
func (g *registration) mayReplace(stat *zk.Stat, data []byte, reclaim bool) error {
	old, err := registry.DecodeRecord(data)
	if err != nil {
		g.r.logWarn("msg", "replacing unreadable record", "znode", g.path, "err", err)
		return nil
	}
	if stat.EphemeralOwner == 0 {
		// Not ephemeral: not a registrar's record, and it would never go
		// away on its own; instancers do not route to it. Take it over,
		// loudly.
		g.r.logWarn("msg", "replacing a persistent record", "znode", g.path, "its_address", old.HostPort(), "ours", g.inst.HostPort())
		return nil
	}
	if old.HostPort() == g.inst.HostPort() {
		if reclaim {
			return fmt.Errorf("%w (session %x)", keeper.ErrSuperseded, stat.EphemeralOwner)
		}
		return nil // a previous run on this address; it cannot still be serving
	}
	return fmt.Errorf("%w: %s is held by %s (session %x), refused for %s",
		registry.ErrConflict, g.path, old.HostPort(), stat.EphemeralOwner, g.inst.HostPort())
}

// createParents creates the persistent znodes above ours that are
// missing (one created meanwhile is fine). It does not try to create one
// that exists: ZooKeeper checks the create permission on the parent
// before it looks whether the child exists, so with digest auth a create
// of /warren/services, made by another user, is refused even though there
// is nothing to create — and an operator who made /warren/services grant
// create to every service's user (docs/registry-zookeeper.md) would still
// see each one refused on /warren.
func (g *registration) createParents(ctx context.Context) error {
	dir := path.Dir(g.path)
	p := ""
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		p += "/" + part
		if ok, _, err := g.r.conn.ExistsContext(ctx, p); err == nil && ok {
			continue
		}
		if _, err := g.r.conn.CreateContext(ctx, p, nil, 0, g.r.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zookeeper: create %s: %w", p, g.r.explainNoAuth(ctx, path.Dir(p), zk.PermCreate, err))
		}
	}
	return nil
}

// explainNoAuth adds to err, when it is ZooKeeper's refusal (zk.ErrNoAuth)
// of a create or delete of a child of dir, what ZooKeeper does not say:
// that dir's ACL refused it, what that ACL lets whom do, and why — with
// digest auth, another digest user (or this user with another password)
// created dir, and only it may create there. Other errors come back as
// they are.
func (r *Registry) explainNoAuth(ctx context.Context, dir string, perm int32, err error) error {
	if !errors.Is(err, zk.ErrNoAuth) {
		return err
	}
	verb := permNames[perm]
	who := "this session, which has no digest auth,"
	if r.cfg.username != "" {
		who = fmt.Sprintf("digest user %q", r.cfg.username)
	}
	acl, _, aerr := r.conn.GetACLContext(ctx, dir)
	if aerr != nil {
		return fmt.Errorf("%w: the ACL of %s does not let %s %s in it (reading that ACL: %v)", err, dir, who, verb, aerr)
	}
	ours := ""
	if r.cfg.username != "" {
		ours = zk.DigestACL(perm, r.cfg.username, r.cfg.password)[0].ID
	}
	var others []string
	wrongPassword := false
	for _, a := range acl {
		if a.Scheme != "digest" || a.Perms&perm == 0 || a.ID == ours {
			continue
		}
		user, _, _ := strings.Cut(a.ID, ":")
		if user == r.cfg.username {
			wrongPassword = true
			continue
		}
		others = append(others, fmt.Sprintf("%q", user))
	}
	why := ""
	switch {
	case wrongPassword:
		// Final: no retry makes this password right.
		err = fmt.Errorf("%w (%w)", err, keeper.ErrRefused)
		why = fmt.Sprintf("; it lets digest user %q %s with another password: this one is wrong", r.cfg.username, verb)
	case len(others) > 0 && r.cfg.username == "":
		// Not a second user's refusal: this process has no digest auth
		// at all (report j47b: the mesh-wide advice below misled).
		why = fmt.Sprintf("; it lets only digest user %s %s in it, and this process has no digest auth: "+
			"give it that user (--zookeeper-username and --zookeeper-password, or WithDigestAuth)", strings.Join(others, ", "), verb)
	case len(others) > 0:
		why = fmt.Sprintf("; it lets only digest user %s %s in it (another service made it as that user): "+
			"every service of the mesh must use one digest user, or an operator must grant %s on %s to each service's user "+
			"(docs/registry-zookeeper.md, Digest auth)", strings.Join(others, ", "), verb, verb, dir)
	}
	return fmt.Errorf("%w: the ACL of %s (%s) does not let %s %s in it%s", err, dir, formatACL(acl), who, verb, why)
}

var permNames = map[int32]string{
	zk.PermRead: "read", zk.PermWrite: "write", zk.PermCreate: "create",
	zk.PermDelete: "delete", zk.PermAdmin: "admin",
}

// formatACL writes acl as zkCli's getAcl does, one scheme:id=perms per
// entry (cdrwa letters), with a digest's hash left out.
func formatACL(acl []zk.ACL) string {
	parts := make([]string, 0, len(acl))
	for _, a := range acl {
		id := a.ID
		if a.Scheme == "digest" {
			id, _, _ = strings.Cut(id, ":")
		}
		perms := ""
		for _, p := range []struct {
			bit    int32
			letter string
		}{{zk.PermCreate, "c"}, {zk.PermDelete, "d"}, {zk.PermRead, "r"}, {zk.PermWrite, "w"}, {zk.PermAdmin, "a"}} {
			if a.Perms&p.bit != 0 {
				perms += p.letter
			}
		}
		parts = append(parts, a.Scheme+":"+id+"="+perms)
	}
	return strings.Join(parts, ", ")
}
