package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// What `serve` keeps in its --dir; `clean` removes exactly these.
const (
	// clustersDir is the clusters' work directory: etcd data, logs,
	// certificates and the kubeconfig.
	clustersDir = "clusters"
	// stateFile is what `serve` writes once its clusters are ready, for `up`
	// to print and `down` to stop.
	stateFile = "state.json"
	// lockFile is locked (flock) by `serve` for as long as it runs, and
	// holds its pid: the one sure sign that clusters run in the directory,
	// whatever state.json says (a serve killed with SIGKILL leaves its
	// state.json behind, and its pid may be reused by another process).
	lockFile = "serve.lock"
	// logFile is serve's output.
	logFile = "serve.log"
)

// state is what `serve` writes once its clusters are ready.
type state struct {
	PID        int               `json:"pid"`
	Kubeconfig string            `json:"kubeconfig"`
	DNS        map[string]string `json:"dns"`
	// Nodes holds, per cluster, its node's network namespace when the
	// clusters have a data plane (run as root).
	Nodes map[string]string `json:"nodes,omitempty"`
	// Toxiproxy is the REST API of the latency proxy in front of the API
	// servers, when they run far away (--wan); RTT is the round trip
	// they were started with.
	Toxiproxy string `json:"toxiproxy,omitempty"`
	RTT       string `json:"rtt,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, stateFile) }

// up starts `serve` in the background, detached from the terminal, and
// returns once it reports ready (or failed). Clusters already running in dir
// are left alone and printed.
func up(ctx context.Context, dir string, n int, wan string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if pid, err := serverPID(abs); err != nil {
		return err
	} else if pid != 0 {
		st, err := readState(abs)
		if err != nil {
			return fmt.Errorf("local clusters are still starting in %s (pid %d): wait for them (see %s), or stop them with %s",
				abs, pid, filepath.Join(abs, logFile), makeHint("demo-down", abs))
		}
		printState(abs, st)
		return nil
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	// Left by a serve that did not stop cleanly.
	os.Remove(statePath(abs))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(abs, logFile)
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	if _, err := parseWAN(wan); err != nil {
		return err
	}
	cmd := exec.Command(self, "serve", "--dir", abs, "--clusters", strconv.Itoa(n), "--wan", wan)
	cmd.Stdout, cmd.Stderr = log, log
	// A session of its own: the clusters outlive this command and the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if st, err := readState(abs); err == nil {
			printState(abs, st)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("local clusters failed to start (%v); the end of %s:\n%s", err, logPath, tail(logPath, 5))
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printState(dir string, st *state) {
	fmt.Printf("Local clusters are running (pid %d). Use them with:\n\n", st.PID)
	fmt.Printf("  export KUBECONFIG=%s\n", st.Kubeconfig)
	fmt.Printf("  kubectl mcs export mysql -n provider-ns --context cluster1\n")
	fmt.Printf("  kubectl mcs import mysql -n provider-ns --from cluster1 --context cluster2 --create-namespace\n\n")
	// Suggestions to query the clusters' CoreDNS by hand; nothing runs them.
	for _, name := range sortedKeys(st.DNS) {
		fmt.Printf("CoreDNS for %s: dig @%s -p %s NAME\n", name, hostOf(st.DNS[name]), portOf(st.DNS[name]))
	}
	if _, err := exec.LookPath("dig"); err != nil {
		fmt.Println("(dig is not installed here; Debian and Ubuntu have it in the package dnsutils)")
	}
	if node, dns := st.Nodes["cluster2"], st.DNS["cluster2"]; node != "" && dns != "" {
		// Suggestions too: the node namespace has no resolver of its own,
		// so the name is resolved first, by cluster2's CoreDNS.
		fmt.Printf("\nEach cluster has a node running kube-proxy, and every pod answers on its ports\n")
		fmt.Printf("with <cluster>/<pod>. After the import, connect from cluster2's node (as root):\n\n")
		fmt.Printf("  ip=$(dig +short @%s -p %s mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local)\n", hostOf(dns), portOf(dns))
		fmt.Printf("  nsenter --net=%s bash -c \"cat < /dev/tcp/$ip/3306\"\n", node)
	}
	if st.Toxiproxy != "" {
		fmt.Printf("\nThe clusters are %s (round trip) away: the kubeconfig's servers are Toxiproxy proxies.\n", st.RTT)
		fmt.Printf("Change the round trip (and jitter) while they run with:\n\n")
		fmt.Printf("  %s WAN=100ms JITTER=10ms\n\n", makeHint("demo-wan", dir))
		fmt.Printf("(WAN=0 removes the latency), or through Toxiproxy's REST API at %s/proxies.\n", st.Toxiproxy)
	}
	fmt.Printf("\nStop them with: %s\n", makeHint("demo-down", dir))
}

// serve runs the clusters in the foreground until SIGTERM/SIGINT.
func serve(ctx context.Context, dir string, n int, wan string) error {
	rtt, err := parseWAN(wan)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(lock.Name())
		lock.Close()
	}()
	// Every start is a clean one: the clusters of an earlier run are removed,
	// not resumed. That is what `make demo-up` promises (two clusters with
	// the seed's StatefulSet in cluster1, ready for the export and import it
	// prints), whatever the last session did to them. A resumed run could not
	// be the same clusters anyway: each start makes new CAs, service-account
	// keys and ports, so only the etcd objects would survive, made under
	// another identity and in a state no test covers (and etcd runs with
	// --unsafe-no-fsync: its data is disposable). The directory is this
	// command's own, locked above, so no running cluster uses it.
	if err := os.RemoveAll(filepath.Join(dir, clustersDir)); err != nil {
		return err
	}
	// As root, the clusters carry traffic too (see localcluster's data plane).
	dataPlane := localcluster.DataPlaneSupported("") == nil
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: n, WorkDir: filepath.Join(dir, clustersDir), Log: os.Stderr, DataPlane: dataPlane,
		FarAway: wan != "", RTT: rtt})
	if err != nil {
		return err
	}
	defer set.Stop()
	if err := applySeed(ctx, set.Clusters[0], os.Stderr); err != nil {
		return err
	}
	st := &state{PID: os.Getpid(), Kubeconfig: set.Kubeconfig, DNS: map[string]string{}}
	if wan != "" {
		st.Toxiproxy, st.RTT = set.ToxiproxyAPI(), rtt.String()
	}
	for _, c := range set.Clusters {
		dns, err := c.StartCoreDNS(ctx, "")
		if err != nil {
			return err
		}
		st.DNS[c.Name] = dns.Addr
		if node := c.NodeNetNS(); node != "" {
			if st.Nodes == nil {
				st.Nodes = map[string]string{}
			}
			st.Nodes[c.Name] = node
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath(dir), b, 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "localclusters: stopping")
	os.Remove(statePath(dir))
	return nil
}

// lockDir takes dir's lock for this process and writes its pid into it, or
// fails if another serve holds it. The lock lasts until the file is closed
// or the process ends, however it ends.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local clusters already run in %s", dir)
		}
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// serverPID returns the pid of the serve that holds dir's lock, or 0 when
// none does (no clusters run there).
func serverPID(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if errors.Is(err, os.ErrNotExist) {
		// A serve of an older version, from before the lock, has only
		// state.json: its pid, if that is a serve of this directory.
		st, err := readState(dir)
		if err != nil || !processRunning(st.PID) {
			return 0, nil
		}
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cmdline")
		if bytes.Contains(cmdline, []byte("\x00serve\x00--dir\x00"+dir+"\x00")) {
			return st.PID, nil
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// The holder writes its pid right after taking the lock.
	for range 50 {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return 0, nil // nobody else holds it; closing f releases ours
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, err
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			return 0, err
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s is locked but names no process", f.Name())
}

// down stops the clusters running in dir and waits until every process is
// gone, then says what is left on disk.
func down(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	stopped, err := stopServer(abs)
	if err != nil {
		return err
	}
	if stopped {
		fmt.Println("Local clusters stopped.")
	} else {
		fmt.Println("No local clusters are running in", abs)
	}
	size, files, err := ownedSize(abs)
	if err != nil {
		return err
	}
	if files == 0 {
		return nil
	}
	fmt.Printf("Left on disk: %s (%s: the stopped clusters' etcd data, logs, certificates and kubeconfig).\n", abs, humanSize(size))
	fmt.Printf("`%s` removes it; the next `%s` starts from a clean state anyway.\n", makeHint("demo-clean", abs), makeHint("demo-up", abs))
	return nil
}

// stopServer stops the serve running in dir, if any, and reports whether one ran.
// It returns once the serve process is gone; serve stops every server it
// started before it exits (and the kernel kills them if it is killed).
func stopServer(dir string) (bool, error) {
	defer os.Remove(statePath(dir)) // serve removes it, unless it was killed
	pid, err := serverPID(dir)
	if err != nil || pid == 0 {
		return false, err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("stopping the local clusters (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	killed := false
	for processRunning(pid) {
		if !killed && time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "The local clusters (pid %d) did not stop in 90 s; killing them.\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true, nil
}

// processRunning reports whether pid is a live process (a zombie, waiting
// for its parent to reap it, has already stopped).
func processRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) S ...: the state follows the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// clean stops the clusters running in dir, if any, and removes what the
// commands keep there; dir itself too, unless it holds other files.
func clean(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	stopped, err := stopServer(abs)
	if err != nil {
		return err
	}
	if stopped {
		fmt.Println("Local clusters stopped.")
	}
	size, files, err := ownedSize(abs)
	if err != nil {
		return err
	}
	if files == 0 {
		fmt.Println("Nothing to remove in", abs)
		return nil
	}
	for _, name := range []string{clustersDir, stateFile, lockFile, logFile} {
		if err := os.RemoveAll(filepath.Join(abs, name)); err != nil {
			return err
		}
	}
	if err := os.Remove(abs); err != nil {
		fmt.Printf("Removed the local clusters' files from %s (%s); %s itself holds other files and stays.\n", abs, humanSize(size), abs)
		return nil
	}
	fmt.Printf("Removed %s (%s).\n", abs, humanSize(size))
	return nil
}

// ownedSize adds up the disk space (as du counts it) of the files the
// commands keep in dir, and counts them.
func ownedSize(dir string) (size int64, files int, err error) {
	for _, name := range []string{clustersDir, stateFile, lockFile, logFile} {
		err := filepath.WalkDir(filepath.Join(dir, name), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				size += st.Blocks * 512
			} else if info.Mode().IsRegular() {
				size += info.Size()
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, 0, err
		}
	}
	return size, files, nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// makeHint is the make command for target on dir: the Makefile's DEMO_DIR
// defaults to .cache/demo under the repository, where make runs us.
func makeHint(target, dir string) string {
	if def, err := filepath.Abs(filepath.Join(".cache", "demo")); err == nil && def == dir {
		return "make " + target
	}
	return "make " + target + " DEMO_DIR=" + dir
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	st := &state{}
	return st, json.Unmarshal(b, st)
}

// parseWAN reads --wan: empty for clusters on loopback, else a round trip
// (a Go duration; a bare 0 is allowed).
func parseWAN(wan string) (time.Duration, error) {
	if wan == "" || wan == "0" {
		return 0, nil
	}
	rtt, err := time.ParseDuration(wan)
	if err != nil || rtt < 0 {
		return 0, fmt.Errorf("--wan %q: want a round trip such as 50ms", wan)
	}
	return rtt, nil
}

// setWAN changes the round trip (and jitter) of every cluster's proxy of
// the clusters running in dir.
func setWAN(dir, wan string, jitter time.Duration) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if wan == "" {
		return errors.New("wan needs --wan RTT (e.g. 100ms; 0 removes the latency)")
	}
	rtt, err := parseWAN(wan)
	if err != nil {
		return err
	}
	st, err := readState(dir)
	if err != nil {
		return fmt.Errorf("no local clusters run in %s (%v); start them with %s WAN=%s", dir, err, makeHint("demo-up", dir), wan)
	}
	if st.Toxiproxy == "" {
		return fmt.Errorf("the clusters in %s run without a latency proxy; restart them with %s WAN=%s", dir, makeHint("demo-up", dir), wan)
	}
	for _, name := range sortedKeys(st.DNS) {
		if err := localcluster.OpenProxy(st.Toxiproxy, name).SetRTT(rtt, jitter); err != nil {
			return err
		}
	}
	fmt.Printf("Each cluster is now %s (round trip, ± %s) away.\n", rtt, jitter)
	return nil
}
