package localcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// harnessChildEnv makes TestHarnessChild run: it is the harness that
// TestDataPlaneGoneWhenHarnessKilled kills.
const harnessChildEnv = "LOCALCLUSTER_HARNESS_CHILD_DIR"

// TestDataPlaneGoneWhenHarnessKilled starts a harness with a data plane in a
// child process, SIGKILLs it (no teardown runs), and checks that the kernel
// took everything down with it: no kube-proxy left, and none of its network
// namespaces (segment, nodes, pods) held by any process or open file.
func TestDataPlaneGoneWhenHarnessKilled(t *testing.T) {
	NeedTools(t)
	needDataPlane(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHarnessChild$", "-test.v")
	child.Env = append(os.Environ(), harnessChildEnv+"="+dir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pids, namespaces []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if rest, ok := strings.CutPrefix(line, "HARNESS-READY "); ok {
			proxies, nets, _ := strings.Cut(rest, " ")
			pids, namespaces = strings.Split(proxies, ","), strings.Split(nets, ",")
			break
		}
	}
	if pids == nil {
		child.Wait()
		t.Fatal("the child harness never reported its data plane")
	}
	t.Logf("child harness %d: kube-proxy pids %v, network namespaces %v", child.Process.Pid, pids, namespaces)
	if len(pids) != 2 || len(namespaces) != 4 {
		t.Fatalf("want 2 kube-proxies and 4 namespaces (segment, 2 nodes, 1 pod)")
	}
	// The kernel reuses a freed namespace's inode number at once, and
	// other test packages create namespaces while this one runs: so a
	// namespace counts as left only while a process that held it before
	// the kill (same pid, same start time) still holds it.
	before := map[string]bool{}
	for _, ns := range namespaces {
		holders := namespaceHolders(ns)
		if len(holders) == 0 {
			t.Fatalf("before the kill, nothing holds %s: the check below could not fail", ns)
		}
		for _, h := range holders {
			before[ns+" "+h.process] = true
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var left []string
		for _, p := range pids {
			pid, _ := strconv.Atoi(p)
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				left = append(left, "kube-proxy "+p)
			}
		}
		left = append(left, processesMentioning(dir)...)
		for _, ns := range namespaces {
			for _, h := range namespaceHolders(ns) {
				if before[ns+" "+h.process] {
					left = append(left, ns+" held by "+h.where)
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the harness was killed, still there: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestHarnessChild is the harness TestDataPlaneGoneWhenHarnessKilled
// kills; it runs only as that test's child.
func TestHarnessChild(t *testing.T) {
	dir := os.Getenv(harnessChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestDataPlaneGoneWhenHarnessKilled")
	}
	ctx := context.Background()
	set, err := Start(ctx, Options{Clusters: 2, DataPlane: true, WorkDir: filepath.Join(dir, "clusters")})
	if err != nil {
		t.Fatal(err)
	}
	c1 := set.Clusters[0]
	if _, err := c1.Create(ctx, "default", []byte(echoManifest)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		pod, err := c1.Client.CoreV1().Pods("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Status.PodIP == "" {
			return errNotYet
		}
		return nil
	})
	var proxies, nets []string
	nets = append(nets, namespaceID(t, set.segment.ns))
	for _, c := range set.Clusters {
		proxies = append(proxies, strconv.Itoa(c.node.proxy.cmd.Process.Pid))
		nets = append(nets, namespaceID(t, c.node.ns))
		c.node.mu.Lock()
		for _, pn := range c.node.pods {
			nets = append(nets, namespaceID(t, pn.ns))
		}
		c.node.mu.Unlock()
	}
	fmt.Printf("HARNESS-READY %s %s\n", strings.Join(proxies, ","), strings.Join(nets, ","))
	select {} // until killed
}

// namespaceID is how /proc shows the namespace: net:[INODE].
func namespaceID(t *testing.T, ns *netNS) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(ns.fd(), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// processesMentioning lists the live processes whose command line contains
// s (every server of a set names its work directory in its arguments).
func processesMentioning(s string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(proc))
		if !isZombie(pid) {
			found = append(found, proc+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// holder is a process in a namespace or holding a file descriptor of it:
// process is its pid and start time (a pid alone can be reused), where the
// member process or the descriptor.
type holder struct{ process, where string }

// namespaceHolders lists the processes that are in the namespace or hold a
// file descriptor of it.
func namespaceHolders(id string) []holder {
	var holders []holder
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		process := proc + " started " + startTime(proc)
		if link, err := os.Readlink(filepath.Join(proc, "ns", "net")); err == nil && link == id {
			holders = append(holders, holder{process, proc + " (member)"})
			continue
		}
		fds, _ := filepath.Glob(filepath.Join(proc, "fd", "*"))
		for _, fd := range fds {
			if link, err := os.Readlink(fd); err == nil && link == id {
				holders = append(holders, holder{process, fd})
			}
		}
	}
	return holders
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot.
func startTime(proc string) string {
	stat, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return "?"
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	fields := strings.Fields(after)
	if len(fields) < 20 {
		return "?"
	}
	return fields[19]
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}
