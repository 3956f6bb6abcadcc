package nginx

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/internal/proc"
)

// runMaster starts the nginx master in its own process group with
// SIGTERM as its parent-death signal (internal/proc): if this process dies
// (SIGKILL, a crash, an OOM kill), the kernel sends the master SIGTERM,
// and nginx's fast shutdown takes its workers down with it (the workers
// themselves do not inherit the parent-death signal: a SIGKILLed master
// would leave them serving on their own).
func runMaster(cmd *exec.Cmd) (*proc.Proc, error) {
	p, err := proc.Run(cmd, proc.WithParentDeathSignal(syscall.SIGTERM))
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return p, nil
}

// leftovers lists the nginx processes (masters and workers) that have
// dir's error log open: the nginx of a previous run in dir that was not
// stopped — its warren was killed, or its master was, leaving the workers
// serving on their own. Every nginx Start runs in dir writes that log, and
// only one warren at a time runs in dir (the lock), so these are ours.
// The pid file names the master of the last run; a scan of /proc finds
// its workers too, orphaned or not. Without /proc the list is empty.
func leftovers(dir, bin string) []int {
	logPath := filepath.Join(dir, "error.log")
	names := map[string]bool{"nginx": true}
	if b := filepath.Base(bin); len(b) > 15 { // comm is at most 15 bytes
		names[b[:15]] = true
	} else {
		names[b] = true
	}
	cands := map[int]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "nginx.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			cands[pid] = true
		}
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				cands[pid] = true
			}
		}
	}
	var out []int
	for pid := range cands {
		if pid == os.Getpid() || !running(pid) {
			continue
		}
		proc := filepath.Join("/proc", strconv.Itoa(pid))
		comm, err := os.ReadFile(filepath.Join(proc, "comm"))
		if err != nil || !names[strings.TrimSpace(string(comm))] {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(proc, "fd", fd.Name())); err == nil &&
				(l == logPath || l == logPath+" (deleted)") {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// running reports whether pid is a live process (a zombie is not).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// stopLeftovers stops the leftovers of dir: SIGTERM (nginx's fast
// shutdown), SIGKILL for any still there after 5 s, and an error if one
// survives 5 s more. It returns the process IDs it stopped.
func stopLeftovers(dir, bin string) ([]int, error) {
	pids := leftovers(dir, bin)
	if len(pids) == 0 {
		return nil, nil
	}
	gone := func(limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for {
			alive := false
			for _, p := range pids {
				if running(p) {
					alive = true
				}
			}
			if !alive {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	if gone(5 * time.Second) {
		return pids, nil
	}
	for _, p := range leftovers(dir, bin) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if gone(5 * time.Second) {
		return pids, nil
	}
	return pids, errors.New("nginx: the nginx a previous run left in " + dir + " does not stop (processes " + fmt.Sprint(pids) + ")")
}
