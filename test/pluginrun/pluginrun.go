// Package pluginrun runs `kubectl mcs` in-process, through the real command
// tree, for the e2e tests and the benchmarks, and counts the requests each
// run sends to each cluster (clusterset.RequestCounter).
package pluginrun

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
)

// Result is one `kubectl mcs` invocation.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
	// Reads, Writes and Leases count the HTTP requests per context.
	Reads, Writes, Leases map[string]int64
	// RepeatedWrites lists, per context, the objects written more than
	// once ("METHOD path" -> count).
	RepeatedWrites map[string]map[string]int
}

// TotalWrites sums the write requests over every cluster.
func (r Result) TotalWrites() int64 {
	var n int64
	for _, w := range r.Writes {
		n += w
	}
	return n
}

// Run runs `kubectl mcs --kubeconfig KUBECONFIG ARGS` until it returns or
// ctx ends (how a --watch run is stopped).
func Run(ctx context.Context, kubeconfig string, args ...string) Result {
	var out, errOut LockedBuffer
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
	r := Result{Args: args, Stdout: out.String(), Stderr: errOut.String(), Code: code,
		Reads: map[string]int64{}, Writes: map[string]int64{}, Leases: map[string]int64{}, RepeatedWrites: map[string]map[string]int{}}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range connected {
		r.Reads[c.Context] += c.Requests.Reads()
		r.Writes[c.Context] += c.Requests.Writes()
		r.Leases[c.Context] += c.Requests.Leases()
		if rep := c.Requests.RepeatedWrites(); len(rep) > 0 {
			r.RepeatedWrites[c.Context] = rep
		}
	}
	return r
}

// LockedBuffer is a bytes.Buffer safe for concurrent writes (a --watch
// run's workers, a child's stdout and stderr) and reads while they go on.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Binary is the kubectl-mcs binary for tests that run it as a process:
// $MCS_PLUGIN_BINARY (make test builds it and sets it), else built into a
// temporary folder of the test.
func Binary(t testing.TB) string {
	t.Helper()
	if path := os.Getenv("MCS_PLUGIN_BINARY"); path != "" {
		return path
	}
	out := filepath.Join(t.TempDir(), "kubectl-mcs")
	if b, err := exec.Command("go", "build", "-o", out, "github.com/kubectl-mcs/kubectl-mcs/cmd/kubectl-mcs").CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-mcs: %v\n%s", err, b)
	}
	return out
}
