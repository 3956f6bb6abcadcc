package nginx

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownerEnv makes the test binary, re-executed, the owner of an nginx
// (TestHelperOwner) that the parent test can SIGKILL.
const ownerEnv = "WARREN_NGINX_TEST_OWNER_DIR"

// TestHelperOwner is not a test: run with ownerEnv set, it starts an
// nginx in that directory, prints its URL and waits to be killed (two
// minutes at most).
func TestHelperOwner(t *testing.T) {
	dir := os.Getenv(ownerEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := Start(ctx, ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer p.Stop()
	fmt.Println("serving", p.URL())
	time.Sleep(2 * time.Minute)
}

// noneLeft waits (30 s at most) until no nginx process has dir's error
// log open and nothing listens on addr.
func noneLeft(t *testing.T, dir, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := leftovers(dir, "nginx")
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		if len(pids) == 0 && err != nil {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("30 s on: nginx processes %v of %s still run; connecting to %s: %v", pids, dir, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The process that started nginx is SIGKILLed (a crash, an OOM kill):
// nginx, master and workers, goes with it and frees the port, and a new
// Start in the same directory serves at once.
func TestStart_NginxDiesWithTheProcessThatStartedIt(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$", "-test.count=1")
	cmd.Env = append(os.Environ(), ownerEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 1)
	go func() { // owned by the test: ends when the helper's stdout closes
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "serving ") || strings.HasPrefix(l, "error ") {
				lines <- l
			}
		}
		close(lines)
	}()
	var url string
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "serving ") {
			t.Fatalf("helper: %q", l)
		}
		url = strings.TrimPrefix(l, "serving ")
	case <-time.After(60 * time.Second):
		t.Fatal("the helper did not start nginx within 60 s")
	}
	if code, body := healthz(url); code != http.StatusOK {
		t.Fatalf("nginx before the kill: %d %q", code, body)
	}
	if len(leftovers(dir, "nginx")) < 2 {
		t.Fatalf("want a master and a worker of %s running, got %v", dir, leftovers(dir, "nginx"))
	}
	cmd.Process.Kill()
	cmd.Wait()
	noneLeft(t, dir, strings.TrimPrefix(url, "http://"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := Start(ctx, ProcessConfig{Dir: dir, Listen: strings.TrimPrefix(url, "http://"), Services: []string{"user"}})
	if err != nil {
		t.Fatalf("restart in the same directory: %v", err)
	}
	defer p.Stop()
	if code, body := healthz(p.URL()); code != http.StatusOK || body != "ok "+p.nonce {
		t.Fatalf("restarted nginx answers %d %q", code, body)
	}
}

// An nginx left in Dir by a previous run — here a master killed on its
// own, whose worker goes on serving the port with a frozen set — is
// stopped by Start, which then serves the port itself (it does not take
// the leftover's answer for its own).
func TestStart_StopsTheNginxAPreviousRunLeftInItsDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := Start(ctx, ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(p.URL(), "http://")
	p.Stop()

	// The previous run's nginx, started by hand from its configuration.
	old := exec.Command(binary(""), "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	old.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-old.Process.Pid, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	var orphans map[int]bool
	for {
		if code, _ := healthz("http://" + addr); code == http.StatusOK {
			if orphans = workers(old.Process.Pid); len(orphans) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the hand-started nginx does not serve within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	old.Process.Kill() // the master alone: its worker serves on
	old.Wait()
	if code, body := healthz("http://" + addr); code != http.StatusOK {
		t.Fatalf("the orphaned worker does not serve: %d %q", code, body)
	}

	p2, err := Start(ctx, ProcessConfig{Dir: dir, Listen: addr, Services: []string{"user"}})
	if err != nil {
		t.Fatalf("Start with a leftover nginx in its dir: %v", err)
	}
	defer p2.Stop()
	for w := range orphans {
		if !slices.Contains(p2.Stopped(), w) {
			t.Errorf("Stopped() = %v; want the orphaned worker %d in it", p2.Stopped(), w)
		}
		if running(w) {
			t.Errorf("the orphaned worker %d still runs", w)
		}
	}
	time.Sleep(3 * time.Second) // nginx gives up binding a busy port after about 2.5 s
	select {
	case <-p2.Exited():
		t.Fatal("the new nginx exited (could not bind?)")
	default:
	}
	if code, body := healthz(p2.URL()); code != http.StatusOK || body != "ok "+p2.nonce {
		t.Fatalf("the port answers %d %q; want the new nginx", code, body)
	}
	p2.Stop()
	noneLeft(t, dir, addr)
}
