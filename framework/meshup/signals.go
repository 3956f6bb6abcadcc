package meshup

import "github.com/warren-mesh/warren/internal/stopsig"

// The launcher stops the mesh in order on stopsig.Signals: Ctrl-C,
// SIGTERM, and SIGHUP — the terminal or SSH session `make up` runs in was
// closed, and the launcher is its foreground process group. Go's default
// for SIGHUP is to die at once (exit 129), the services then stopping on
// their parent-death signal while the registry went down with them. A
// SIGHUP the launcher was started ignoring (nohup) stays ignored.
//
// A second signal kills the services, but one within stopsig.Window of
// the first is that first one delivered twice, the rule services and the
// warren CLI follow: under `go tool meshup` a Ctrl-C arrives from the
// terminal (the whole process group) and again relayed by go tool.

// followSignals calls stop when w asks for a graceful stop and force when
// it asks to force exit; it returns after force, or when done closes.
func followSignals(w *stopsig.Watcher, done <-chan struct{}, stop, force func()) {
	select {
	case <-w.Stop():
		stop()
	case <-done:
		return
	}
	select {
	case <-w.Force():
		force()
	case <-done:
	}
}
