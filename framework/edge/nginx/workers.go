package nginx

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// workers lists the child processes of the nginx master pid (its worker
// processes), read from /proc. nil when /proc cannot be read.
func workers(pid int) map[int]bool {
	// The kernel's own list first; a scan of every process's stat where
	// the kernel does not keep it (CONFIG_PROC_CHILDREN unset).
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children")); err == nil {
		out := map[int]bool{}
		for _, f := range bytes.Fields(b) {
			if n, err := strconv.Atoi(string(f)); err == nil {
				out[n] = true
			}
		}
		return out
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil
	}
	out := map[int]bool{}
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(string(f[1])); err == nil && ppid == pid {
			if n, err := strconv.Atoi(filepath.Base(filepath.Dir(s))); err == nil {
				out[n] = true
			}
		}
	}
	return out
}
