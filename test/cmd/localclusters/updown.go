package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// state is what `serve` writes once its clusters are ready, for `up` to
// print and `down` to stop.
type state struct {
	PID        int               `json:"pid"`
	Kubeconfig string            `json:"kubeconfig"`
	DNS        map[string]string `json:"dns"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// up starts `serve` in the background, detached from the terminal, and
// returns once it reports ready (or failed).
func up(ctx context.Context, dir string, n int) error {
	if st, err := readState(dir); err == nil && syscall.Kill(st.PID, 0) == nil {
		printState(st)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	os.Remove(statePath(abs))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(abs, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "serve", "--dir", abs, "--clusters", strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: the clusters outlive this command and the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if st, err := readState(abs); err == nil {
			printState(st)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("local clusters failed to start (%v); see %s", err, logPath)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printState(st *state) {
	fmt.Printf("Local clusters are running (pid %d). Use them with:\n\n", st.PID)
	fmt.Printf("  export KUBECONFIG=%s\n", st.Kubeconfig)
	fmt.Printf("  kubectl mcs export mysql -n provider-ns --context cluster1\n")
	fmt.Printf("  kubectl mcs import mysql -n provider-ns --from cluster1 --context cluster2 --create-namespace\n\n")
	for _, name := range sortedKeys(st.DNS) {
		fmt.Printf("CoreDNS for %s: dig @%s -p %s NAME\n", name, hostOf(st.DNS[name]), portOf(st.DNS[name]))
	}
	fmt.Println("\nStop them with: make demo-down")
}

// serve runs the clusters in the foreground until SIGTERM/SIGINT.
func serve(ctx context.Context, dir string, n int) error {
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: n, WorkDir: filepath.Join(dir, "clusters"), Log: os.Stderr})
	if err != nil {
		return err
	}
	defer set.Stop()
	if err := applySeed(ctx, set.Clusters[0], os.Stderr); err != nil {
		return err
	}
	st := &state{PID: os.Getpid(), Kubeconfig: set.Kubeconfig, DNS: map[string]string{}}
	for _, c := range set.Clusters {
		dns, err := c.StartCoreDNS(ctx, "")
		if err != nil {
			return err
		}
		st.DNS[c.Name] = dns.Addr
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

func down(dir string) error {
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No local clusters are running in", dir)
		return nil
	}
	if err != nil {
		return err
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		os.Remove(statePath(dir))
		fmt.Println("Local clusters were not running any more.")
		return nil
	}
	deadline := time.Now().Add(90 * time.Second)
	for syscall.Kill(st.PID, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	os.Remove(statePath(dir))
	fmt.Println("Local clusters stopped.")
	return nil
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	st := &state{}
	return st, json.Unmarshal(b, st)
}
