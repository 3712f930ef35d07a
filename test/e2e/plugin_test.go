package e2e

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
)

// pluginRun is one `kubectl mcs` invocation, run in-process through the
// real command tree against the local clusters.
type pluginRun struct {
	args   []string
	stdout string
	stderr string
	code   int
	// writes and reads count the HTTP requests per context.
	writes map[string]int64
	reads  map[string]int64
}

// kubectlMCS runs `kubectl mcs ARGS` with the given kubeconfig.
func kubectlMCS(t *testing.T, kubeconfig string, args ...string) pluginRun {
	t.Helper()
	return kubectlMCSContext(context.Background(), t, kubeconfig, args...)
}

// kubectlMCSContext runs `kubectl mcs ARGS` until it returns or ctx ends
// (how a --watch run is stopped).
func kubectlMCSContext(ctx context.Context, t *testing.T, kubeconfig string, args ...string) pluginRun {
	t.Helper()
	var out, errOut lockedBuffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	var mu sync.Mutex
	var connected []*clusterset.Cluster
	loader := &clusterset.Loader{
		Flags:     genericclioptions.NewConfigFlags(true),
		OnConnect: func(c *clusterset.Cluster) { mu.Lock(); connected = append(connected, c); mu.Unlock() },
	}
	root := cmd.NewCmdMCSWithLoader(streams, loader)
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	root.SetContext(ctx)
	code := cmd.Execute(root, streams)
	run := pluginRun{args: args, stdout: out.String(), stderr: errOut.String(), code: code, writes: map[string]int64{}, reads: map[string]int64{}}
	for _, c := range connected {
		run.writes[c.Context] += c.Requests.Writes()
		run.reads[c.Context] += c.Requests.Reads()
	}
	t.Logf("$ kubectl mcs %s\n%s%s(exit %d)", strings.Join(args, " "), run.stdout, run.stderr, code)
	return run
}

// mustSucceed fails the test unless the run exited 0.
func (r pluginRun) mustSucceed(t *testing.T) pluginRun {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("kubectl mcs %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail fails the test unless the run exited non-zero with every given
// fragment in its error output.
func (r pluginRun) mustFail(t *testing.T, fragments ...string) pluginRun {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("kubectl mcs %s: exit 0, want a failure\nstdout:\n%s", strings.Join(r.args, " "), r.stdout)
	}
	for _, f := range fragments {
		if !strings.Contains(r.stderr, f) {
			t.Errorf("kubectl mcs %s: error output lacks %q:\n%s", strings.Join(r.args, " "), f, r.stderr)
		}
	}
	return r
}

func (r pluginRun) totalWrites() int64 {
	var n int64
	for _, w := range r.writes {
		n += w
	}
	return n
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// --watch run's workers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
