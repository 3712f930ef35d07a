package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

// TestLeaderCutOffFromLeaseWritesNothingAfter runs two watch replicas with
// leader election; the Lease is in cluster3, which each replica reaches
// through its own TCP forwarder. Cutting the leader's forwarder cuts it off
// from the Lease only (it still reaches cluster1 and cluster2). It must
// stop writing the moment it loses the Lease (0 write requests after), exit
// 1 saying so, and the other replica must take over: an export made after
// the cut is imported.
func TestLeaderCutOffFromLeaseWritesNothingAfter(t *testing.T) {
	set := needClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := "lease-cut"
	provider, consumer, leaseCluster := set.Cluster("cluster1"), set.Cluster("cluster2"), set.Cluster("cluster3")
	exportWeb(ctx, t, set, provider, ns)
	for _, c := range []*localcluster.Cluster{consumer, leaseCluster} {
		if _, err := c.Create(ctx, ns, []byte(namespaceManifest(ns))); err != nil {
			t.Fatal(err)
		}
	}
	holder := func() string {
		lease, err := leaseCluster.Client.CoordinationV1().Leases(ns).Get(ctx, "kubectl-mcs", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	start := func(id string) *replica {
		server := serverURL(t, set, leaseCluster.Name)
		r := &replica{id: id, lease: startForwarder(t, server.Host), done: make(chan int, 1), stopped: make(chan struct{})}
		r.log.atLoss = -1
		// The same host name (the serving certificate's), the forwarder's port.
		_, port, _ := net.SplitHostPort(r.lease.addr())
		server.Host = net.JoinHostPort(server.Hostname(), port)
		kubeconfig := withContext(t, set, "lease", leaseCluster.Name, server.String())
		go r.run(watchCtx, kubeconfig, "import", "-n", ns, "--from", "cluster1", "--context", "cluster2",
			"--watch", "--leader-elect", "--leader-elect-context", "lease", "--leader-elect-namespace", ns, "--leader-elect-identity", id,
			"--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms")
		return r
	}
	a := start("replica-a")
	eventually(ctx, t, 60*time.Second, "replica-a holds the Lease", func() (bool, string) { h := holder(); return h == "replica-a", "holder " + h })
	b := start("replica-b")
	eventually(ctx, t, 60*time.Second, "the leader imports web", func() (bool, string) {
		return len(mirroredHostnamesQuiet(ctx, consumer, ns, "web")) == 1, ""
	})
	eventually(ctx, t, 30*time.Second, "replica-b follows", func() (bool, string) {
		return strings.Contains(b.log.String(), "following leader replica-a"), b.log.String()
	})

	// The leader is kept busy across the loss: a new export every 100ms,
	// each a sync that writes in both clusters, so that the loss finds
	// syncs under way.
	churnDone := make(chan int)
	go func() {
		defer close(churnDone)
		for i := 0; ; i++ {
			select {
			case <-a.stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := provider.Create(ctx, ns, []byte(fmt.Sprintf(churnManifest, i, i))); err != nil {
				t.Errorf("churn %d: %v", i, err)
				return
			}
		}
	}()
	time.Sleep(time.Second)
	a.lease.cut()
	var code int
	select {
	case code = <-a.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("replica-a still runs 60s after it was cut off from the Lease:\n%s", a.log.String())
	}
	close(a.stopped)
	<-churnDone
	t.Logf("replica-a's output:\n%s", a.log.String())
	if code != 1 {
		t.Errorf("replica-a exited %d after losing the Lease, want 1", code)
	}
	for _, want := range []string{"leader election lost", "lease " + ns + "/kubectl-mcs in context lease", "another one takes over"} {
		if !strings.Contains(a.log.String(), want) {
			t.Errorf("replica-a's output lacks %q:\n%s", want, a.log.String())
		}
	}
	atLoss, total := a.writesAtLoss(), a.writes()
	if atLoss < 0 {
		t.Fatalf("replica-a never said it lost the Lease:\n%s", a.log.String())
	}
	if atLoss == 0 {
		t.Errorf("replica-a wrote nothing while it led: the count proves nothing")
	}
	t.Logf("replica-a: %d write requests while it led, %d after it lost the Lease", atLoss, total-atLoss)
	if after := total - atLoss; after != 0 {
		t.Errorf("replica-a sent %d write requests after it lost the Lease (%d before)", after, atLoss)
	}

	// After the cut: a new Service exported is imported by the new leader.
	before := b.writes()
	if _, err := provider.Create(ctx, ns, []byte(lateServiceManifest)); err != nil {
		t.Fatal(err)
	}
	kubectlMCS(t, set.Kubeconfig, "export", "late", "-n", ns, "--context", "cluster1").mustSucceed(t)
	eventually(ctx, t, 60*time.Second, "replica-b leads and imports late", func() (bool, string) {
		_, err := getServiceImportErr(ctx, consumer, ns, "late")
		return holder() == "replica-b" && err == nil, "holder " + holder() + ", " + errString(err)
	})
	if b.writes() == before {
		t.Errorf("replica-b wrote nothing, yet late was imported")
	}

	// A clean stop releases the Lease, after the workers stopped.
	stopWatch()
	if code := <-b.done; code != 0 {
		t.Errorf("replica-b exited %d on SIGTERM-like stop, want 0:\n%s", code, b.log.String())
	}
	if h := holder(); h != "" {
		t.Errorf("Lease still held by %q after replica-b stopped", h)
	}
	if !strings.Contains(b.log.String(), "released lease") {
		t.Errorf("replica-b's output does not say it released the Lease:\n%s", b.log.String())
	}
}

const lateServiceManifest = `apiVersion: v1
kind: Service
metadata:
  name: late
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`

// churnManifest is a Service of web's pods and its export, numbered.
const churnManifest = `apiVersion: v1
kind: Service
metadata:
  name: churn-%d
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: churn-%d
`

// replica is one in-process `kubectl mcs ... --watch` whose write requests
// are read while it runs, and counted at the instant it logs the loss of
// its Lease.
type replica struct {
	id      string
	lease   *forwarder
	done    chan int
	stopped chan struct{}
	log     lossLog

	mu       sync.Mutex
	clusters []*clusterset.Cluster
}

func (r *replica) run(ctx context.Context, kubeconfig string, args ...string) {
	r.log.onLoss = r.writes
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &r.log, ErrOut: &r.log}
	loader := &clusterset.Loader{
		Flags:     genericclioptions.NewConfigFlags(true),
		OnConnect: func(c *clusterset.Cluster) { r.mu.Lock(); r.clusters = append(r.clusters, c); r.mu.Unlock() },
	}
	root := cmd.NewCmdMCSWithLoader(streams, loader)
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	root.SetContext(ctx)
	r.done <- cmd.Execute(root, streams)
}

// writes sums the write requests sent so far (Lease requests are counted
// apart, as leases).
func (r *replica) writes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, c := range r.clusters {
		n += c.Requests.Writes()
	}
	return n
}

func (r *replica) writesAtLoss() int64 {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	return r.log.atLoss
}

// lossLog is a replica's output. The line that says the Lease is lost is
// written after the workers' context was cancelled: the write count taken
// while that line is written is the count at the loss.
type lossLog struct {
	mu     sync.Mutex
	b      strings.Builder
	onLoss func() int64
	atLoss int64
	seen   bool
}

func (l *lossLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen && strings.Contains(string(p), "leader election lost") {
		l.seen, l.atLoss = true, l.onLoss()
	}
	return l.b.Write(p)
}

func (l *lossLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// forwarder is a TCP forwarder on 127.0.0.1 whose cut closes the listener
// and every connection: the replica behind it can no longer reach the
// target, while its other clusters answer.
type forwarder struct {
	l      net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{l: l}
	t.Cleanup(f.cut)
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = down.Close()
				continue
			}
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				_ = down.Close()
				_ = up.Close()
				return
			}
			f.conns = append(f.conns, down, up)
			f.mu.Unlock()
			go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
			go func() { _, _ = io.Copy(down, up); _ = down.Close() }()
		}
	}()
	return f
}

func (f *forwarder) addr() string { return f.l.Addr().String() }

func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	_ = f.l.Close()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}

// serverURL is the URL of a context's API server.
func serverURL(t *testing.T, set *localcluster.Set, contextName string) *url.URL {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(set.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Clusters[cfg.Contexts[contextName].Cluster].Server)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// withContext writes a copy of the set's kubeconfig with one more context,
// name: the cluster and user of context like, at server.
func withContext(t *testing.T, set *localcluster.Set, name, like, server string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(set.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	base := cfg.Contexts[like]
	cluster := cfg.Clusters[base.Cluster].DeepCopy()
	cluster.Server = server
	cfg.Clusters[name] = cluster
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: base.AuthInfo, Namespace: "default"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
