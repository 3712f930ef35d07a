package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	mcscmd "github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// helpExample is the `kubectl mcs ...` command of one line of a verb's
// Example, without the shell around it (a redirection, a pipe, `&& ...`,
// `source <(...)`), with the VAR=value assignments before it.
type helpExample struct {
	verb, line string
	env, args  []string
}

var envAssignment = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// helpExamples reads the Example field of every command of the tree.
func helpExamples(t *testing.T, root *cobra.Command) []helpExample {
	t.Helper()
	var out []helpExample
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			words := shellWords(line)
			i := 0
			for i+1 < len(words) && !(words[i] == "kubectl" && words[i+1] == "mcs") {
				i++
			}
			if i+1 >= len(words) {
				t.Errorf("%s: example %q runs no `kubectl mcs`", c.CommandPath(), line)
				continue
			}
			ex := helpExample{verb: c.CommandPath(), line: line}
			for _, w := range words[:i] {
				if envAssignment.MatchString(w) {
					ex.env = append(ex.env, w)
				}
			}
			for _, w := range words[i+2:] {
				if strings.ContainsAny(w[:1], "|&;>)") {
					break
				}
				ex.args = append(ex.args, w)
			}
			out = append(out, ex)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// shellWords splits a line as a shell would, for the quoting examples use
// ('...' and "..."); an unquoted operator character is a word of its own.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("|&;>)", r):
			// An operator ends the word before it and is a word itself.
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			words = append(words, string(r))
			inWord = false
		case r == '(' && cur.String() == "<":
			// source <(kubectl mcs ...): the command starts inside.
			cur.Reset()
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestHelpExamplesRun runs the command of every example of every verb's
// --help, read from the command tree (a new example is tested as soon as
// it is written), against two local clusters set up as `make demo-up` sets
// them up (contexts cluster1 and cluster2, the seed's MySQL in provider-ns
// of cluster1), once mysql is exported and synced and both clusters'
// CoreDNS Corefiles (ConfigMaps, as the demo keeps them) are patched, as
// after the quick start. Each must exit 0; a --watch example must still be running
// after a few seconds and stop cleanly on SIGINT. unexport runs last.
func TestHelpExamplesRun(t *testing.T) {
	needServers(t)
	plugin := pluginrun.Binary(t)
	examples := helpExamples(t, mcscmd.NewCmdMCS(genericiooptions.NewTestIOStreamsDiscard()))
	if len(examples) < 10 {
		t.Fatalf("only %d examples found in the command tree", len(examples))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	t.Setenv(localcluster.ToolsDirEnv, toolsDir(t))
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	provider, consumer := set.Clusters[0], set.Clusters[1]
	if err := applySeed(ctx, provider, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := waitForSeedEndpoints(ctx, provider); err != nil {
		t.Fatal(err)
	}
	for _, c := range set.Clusters {
		if err := createVendorCorefile(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "KUBECONFIG="+set.Kubeconfig, "KUBECACHEDIR="+t.TempDir())
	for _, args := range [][]string{
		{"export", "mysql", "-n", "provider-ns", "--context", provider.Name},
		{"sync", "-A", "--clusters", provider.Name + "," + consumer.Name, "--create-namespace"},
		{"dns", "--patch", "--vendor-form", "--context", consumer.Name},
		// Both clusters import (sync), so both serve clusterset.local, as
		// check's examples expect of a clusterset set up in full.
		{"dns", "--patch", "--vendor-form", "--context", provider.Name},
	} {
		if out, err := runPlugin(ctx, plugin, env, args); err != nil {
			t.Fatalf("setting up: kubectl mcs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Run("OutputAsKubectlGet", func(t *testing.T) { compareWithKubectl(ctx, t, plugin, env) })
	var last []helpExample
	for _, ex := range examples {
		if ex.verb == "kubectl mcs unexport" {
			last = append(last, ex)
			continue
		}
		runExample(ctx, t, plugin, env, ex)
	}
	for _, ex := range last {
		runExample(ctx, t, plugin, env, ex)
	}
}

// compareWithKubectl holds status's -o name and -o jsonpath to what the
// real kubectl prints for the objects the rows are about (make tools
// builds kubectl; without it the comparison is skipped).
func compareWithKubectl(ctx context.Context, t *testing.T, plugin string, env []string) {
	kubectl := filepath.Join(toolsDir(t), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl in %s (make tools builds it): %v", toolsDir(t), err)
	}
	for _, tc := range []struct {
		mcs, kubectl []string
	}{
		// A row of status names the ServiceExport, as kubectl get -o name does.
		{[]string{"status", "-n", "provider-ns", "--clusters", "cluster1,cluster2", "-o", "name"},
			[]string{"get", "serviceexports.multicluster.x-k8s.io", "-n", "provider-ns", "--context", "cluster1", "-o", "name"}},
		// jsonpath: space-separated values, no newline, as kubectl prints them.
		{[]string{"status", "-n", "provider-ns", "--clusters", "cluster1,cluster2", "-o", "jsonpath={.services[*].service}"},
			[]string{"get", "serviceexports.multicluster.x-k8s.io", "-n", "provider-ns", "--context", "cluster1", "-o", "jsonpath={.items[*].metadata.name}"}},
		{[]string{"status", "-n", "provider-ns", "--clusters", "cluster1,cluster2", "-o", `jsonpath={range .services[*]}{.service}{"\n"}{end}`},
			[]string{"get", "serviceimports.multicluster.x-k8s.io", "-n", "provider-ns", "--context", "cluster2", "-o", `jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`}},
	} {
		got, err := stdout(ctx, env, plugin, tc.mcs...)
		if err != nil {
			t.Fatalf("kubectl mcs %s: %v", strings.Join(tc.mcs, " "), err)
		}
		want, err := stdout(ctx, env, kubectl, tc.kubectl...)
		if err != nil {
			t.Fatalf("kubectl %s: %v", strings.Join(tc.kubectl, " "), err)
		}
		if got != want || want == "" {
			t.Errorf("kubectl mcs %s printed %q; kubectl %s printed %q", strings.Join(tc.mcs, " "), got, strings.Join(tc.kubectl, " "), want)
		}
	}
}

func runExample(ctx context.Context, t *testing.T, plugin string, env []string, ex helpExample) {
	t.Helper()
	env = append(env, ex.env...)
	if !containsWord(ex.args, "--watch") {
		out, err := runPlugin(ctx, plugin, env, ex.args)
		if err != nil {
			t.Errorf("%s: example %q: %v\n%s", ex.verb, ex.line, err, out)
			return
		}
		t.Logf("ran %q: %d lines of output", ex.line, strings.Count(out, "\n"))
		return
	}
	cmd := exec.CommandContext(ctx, plugin, ex.args...)
	cmd.Env = env
	var out pluginrun.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Errorf("%s: example %q stopped by itself (%v)\n%s", ex.verb, ex.line, err, out.String())
		return
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: example %q did not stop cleanly on SIGINT: %v\n%s", ex.verb, ex.line, err, out.String())
			return
		}
		t.Logf("ran %q for 5s, stopped by SIGINT", ex.line)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("%s: example %q did not stop within 30s of SIGINT\n%s", ex.verb, ex.line, out.String())
	}
}

func runPlugin(ctx context.Context, plugin string, env, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, plugin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = errors.New(exit.String())
	}
	return string(out), err
}

// stdout runs a program and returns what it printed on stdout; an error
// carries its stderr.
func stdout(ctx context.Context, env []string, program string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = env
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, errOut.String())
	}
	return string(out), nil
}

func containsWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// TestHelpExamplesParse holds the parsing of example lines to the shell's.
func TestHelpExamplesParse(t *testing.T) {
	root := &cobra.Command{Use: "mcs", Example: strings.Join([]string{
		"# a comment",
		"source <(kubectl mcs completion bash)",
		`kubectl mcs completion zsh > "${fpath[1]}/_kubectl-mcs"`,
		"KUBECTL_MCS_CLUSTERS=cluster1,cluster2 kubectl mcs status -A -o yaml",
		`kubectl mcs status -o jsonpath='{range .services[*]}{.service}{"\n"}{end}'`,
		"kubectl mcs dns --context cluster2 && echo ready",
	}, "\n")}
	got := helpExamples(t, root)
	want := []struct {
		env, args string
	}{
		{"", "completion bash"},
		{"", "completion zsh"},
		{"KUBECTL_MCS_CLUSTERS=cluster1,cluster2", "status -A -o yaml"},
		{"", `status -o jsonpath={range .services[*]}{.service}{"\n"}{end}`},
		{"", "dns --context cluster2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d examples, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if strings.Join(got[i].env, " ") != w.env || strings.Join(got[i].args, " ") != w.args {
			t.Errorf("example %q: env %q args %q, want %q and %q", got[i].line, got[i].env, got[i].args, w.env, w.args)
		}
	}
}
