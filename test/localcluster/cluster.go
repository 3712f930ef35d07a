// Package localcluster starts real Kubernetes control planes on loopback for
// the end-to-end tests and `make demo`: one etcd, and per cluster a
// kube-apiserver (client-certificate auth, RBAC), a kube-controller-manager
// running the controllers the MCS scenario needs, a pod stand-in in place of
// the kubelet, the MCS CRDs, and on request a CoreDNS serving cluster.local
// and clusterset.local from that cluster's API.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/crds"
)

// Options configures Start.
type Options struct {
	// Clusters is how many clusters to start; they are named cluster1..N.
	Clusters int
	// WorkDir holds data, logs, certificates and the kubeconfig. Empty means
	// a new temporary directory, removed by Stop.
	WorkDir string
	// ToolsDir holds the server binaries; empty means ToolsDir().
	ToolsDir string
	// Log receives one line per step; nil discards.
	Log io.Writer
	// CRDVersion, per cluster name, restricts the MCS CRDs to one served
	// version (e.g. "v1alpha1" to stand in for an older install); "none"
	// installs no MCS CRDs at all.
	CRDVersion map[string]string
	// DataPlane gives the clusters a network that carries traffic: pods in
	// network namespaces answering on their container ports, and per
	// cluster a node running a real kube-proxy (see dataplane.go). It needs
	// what DataPlaneSupported checks (root, iptables, kube-proxy).
	DataPlane bool
	// FarAway puts a Toxiproxy proxy (toxiproxy.go) in front of every API
	// server and points the Set's kubeconfig through it, so tests can put
	// clusters far away (Cluster.Proxy.SetRTT) and inject faults. The
	// harness's own clients (Cluster.Config, the controller manager) keep
	// talking to the API servers directly. It needs toxiproxy-server in the
	// tools folder.
	FarAway bool
	// RTT, with FarAway, is the round trip every proxy starts with.
	RTT time.Duration
}

// Set is a group of running clusters sharing one etcd and one kubeconfig.
type Set struct {
	WorkDir string
	// Kubeconfig has one context per cluster, named after it; with
	// Options.FarAway its servers are the proxies.
	Kubeconfig string
	// DirectKubeconfig is Kubeconfig with the API servers' own addresses
	// (the same file when there are no proxies).
	DirectKubeconfig string
	Clusters         []*Cluster

	toolsDir  string
	log       io.Writer
	ownsDir   bool
	etcd      *process
	etcdURL   string
	segment   *segment
	toxiproxy *toxiproxyServer
	stopOnce  sync.Once
	clusterMu sync.Mutex
}

// Cluster is one running control plane.
type Cluster struct {
	Name string
	// Server is the apiserver's https URL on 127.0.0.1.
	Server string
	// Proxy, with Options.FarAway, is the Toxiproxy proxy in front of the
	// apiserver (nil otherwise); ProxyServer is its https URL, the server
	// of the cluster's context in Set.Kubeconfig.
	Proxy       *Proxy
	ProxyServer string
	// Config authenticates as a cluster admin (group system:masters).
	Config *rest.Config
	Client kubernetes.Interface

	set       *Set
	index     int
	dir       string
	ca        *authority
	port      int
	saKey     string
	saPub     string
	apiserver *process
	kcm       *process
	podsStop  context.CancelFunc
	podsDone  chan struct{}
	dnsMu     sync.Mutex
	dns       []*CoreDNS
	node      *node
}

// PodCIDR is the range the pod stand-in assigns pod IPs from: 198.18.0.0/15
// is reserved for benchmarking and never routed, and kube-apiserver accepts
// it in EndpointSlices (it rejects loopback and link-local addresses).
func (c *Cluster) PodCIDR() string { return fmt.Sprintf("198.18.%d.0/20", c.index*16) }

// ServiceCIDR is the cluster's service range, disjoint from every pod range.
func (c *Cluster) ServiceCIDR() string { return fmt.Sprintf("198.19.%d.0/20", c.index*16) }

// Start brings up opts.Clusters clusters and returns when every apiserver is
// ready and the MCS CRDs are established. On error everything started is
// stopped again.
func Start(ctx context.Context, opts Options) (_ *Set, err error) {
	if opts.Clusters < 1 {
		return nil, errors.New("localcluster: at least one cluster is needed")
	}
	s := &Set{WorkDir: opts.WorkDir, toolsDir: opts.ToolsDir, log: opts.Log}
	if s.toolsDir == "" {
		s.toolsDir = ToolsDir()
	}
	if s.log == nil {
		s.log = io.Discard
	}
	if err := CheckTools(s.toolsDir); err != nil {
		return nil, err
	}
	if opts.FarAway {
		if err := CheckFarAwayTools(s.toolsDir); err != nil {
			return nil, err
		}
	}
	if s.WorkDir == "" {
		if s.WorkDir, err = os.MkdirTemp("", "kubectl-mcs-clusters-"); err != nil {
			return nil, err
		}
		s.ownsDir = true
	} else if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	start := time.Now()
	if opts.DataPlane {
		if err := DataPlaneSupported(s.toolsDir); err != nil {
			return nil, err
		}
	}
	if err := s.startEtcd(ctx); err != nil {
		return nil, err
	}
	for i := range opts.Clusters {
		s.Clusters = append(s.Clusters, &Cluster{Name: "cluster" + strconv.Itoa(i+1), index: i, set: s})
	}
	if opts.DataPlane {
		if err := s.startSegment(); err != nil {
			return nil, err
		}
	}
	errs := make([]error, len(s.Clusters))
	var wg sync.WaitGroup
	for i, c := range s.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(ctx, opts.CRDVersion[c.Name], opts.DataPlane)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.FarAway {
		if err := s.startProxies(ctx, opts.RTT); err != nil {
			return nil, err
		}
	}
	if err := s.writeKubeconfig(); err != nil {
		return nil, err
	}
	s.logf("%d cluster(s) ready in %s; kubeconfig %s", len(s.Clusters), time.Since(start).Round(100*time.Millisecond), s.Kubeconfig)
	return s, nil
}

func (s *Set) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "localcluster: "+format+"\n", args...)
}

func (s *Set) binary(name string) string { return filepath.Join(s.toolsDir, name) }

// Cluster returns the cluster with the given name, or nil.
func (s *Set) Cluster(name string) *Cluster {
	for _, c := range s.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (s *Set) startEtcd(ctx context.Context) error {
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	s.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	s.etcd, err = startProcess("etcd", s.WorkDir, s.binary(EtcdBinary),
		"--name=local",
		"--data-dir="+filepath.Join(s.WorkDir, "etcd"),
		"--listen-client-urls="+s.etcdURL,
		"--advertise-client-urls="+s.etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=local="+peerURL,
		// Test data is disposable; fsync would only slow every write.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return waitFor(ctx, s.etcd, "etcd to serve", func(ctx context.Context) error {
		return httpGetOK(ctx, s.etcdURL+"/health")
	})
}

func (c *Cluster) start(ctx context.Context, crdVersion string, dataPlane bool) error {
	c.dir = filepath.Join(c.set.WorkDir, c.Name)
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	var err error
	if c.ca, err = newAuthority(c.Name); err != nil {
		return err
	}
	serverCert, serverKey, err := c.ca.issue("kube-apiserver", nil, true)
	if err != nil {
		return err
	}
	if c.saKey, c.saPub, err = writeServiceAccountKey(c.dir); err != nil {
		return err
	}
	if err := writeFiles(map[string][]byte{
		c.path("ca.crt"):     c.ca.certPEM,
		c.path("server.crt"): serverCert,
		c.path("server.key"): serverKey,
	}); err != nil {
		return err
	}
	if c.port, err = freePort(); err != nil {
		return err
	}
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", c.port)
	if c.Config, err = c.UserConfig("kubernetes-admin", []string{"system:masters"}); err != nil {
		return err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	kcmKubeconfig := c.path("controller-manager.kubeconfig")
	if err := writeKubeconfig(kcmKubeconfig, []*Cluster{c}, c.Config, true); err != nil {
		return err
	}
	if c.kcm, err = startProcess(c.Name+"-kube-controller-manager", c.set.WorkDir, c.set.binary(ControllerManagerBinary),
		"--kubeconfig="+kcmKubeconfig,
		"--controllers="+strings.Join(Controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file="+c.saKey,
		"--root-ca-file="+c.path("ca.crt"),
		"--service-cluster-ip-range="+c.ServiceCIDR(),
		"--concurrent-statefulset-syncs=5",
		"--v=1",
	); err != nil {
		return err
	}
	if err := c.registerNode(ctx); err != nil {
		return err
	}
	if dataPlane {
		// The node comes first: the pod stand-in plumbs each pod into it.
		if err := c.startNode(ctx); err != nil {
			return err
		}
	}
	if err := c.startPods(); err != nil {
		return err
	}
	if crdVersion != "none" {
		if err := c.installCRDs(ctx, crdVersion); err != nil {
			return err
		}
	}
	c.set.logf("%s: apiserver %s ready", c.Name, c.Server)
	return nil
}

// Controllers are the kube-controller-manager controllers each cluster runs:
// what a StatefulSet or Deployment behind a Service needs to get
// EndpointSlices, plus namespace deletion and garbage collection so tests
// can clean up the way a real cluster does.
var Controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
}

// StartAPIServer starts (or restarts, after StopAPIServer) the cluster's
// kube-apiserver on its fixed port and waits until /readyz answers.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	var err error
	c.apiserver, err = startProcess(c.Name+"-kube-apiserver", c.set.WorkDir, c.set.binary(APIServerBinary),
		"--etcd-servers="+c.set.etcdURL,
		"--etcd-prefix=/"+c.Name,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints would carry the loopback
		// address, which EndpointSlices reject; no test needs them.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(c.port),
		"--tls-cert-file="+c.path("server.crt"),
		"--tls-private-key-file="+c.path("server.key"),
		"--client-ca-file="+c.path("ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.saPub,
		"--service-account-signing-key-file="+c.saKey,
		"--service-cluster-ip-range="+c.ServiceCIDR(),
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitFor(ctx, c.apiserver, c.Name+" kube-apiserver to be ready", func(ctx context.Context) error {
		return c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	})
}

// StopAPIServer stops the cluster's kube-apiserver (for fault tests); the
// other components keep running and reconnect after StartAPIServer.
func (c *Cluster) StopAPIServer() { c.apiserver.stop(5 * time.Second) }

// KillAPIServer kills the cluster's kube-apiserver with SIGKILL (a crash:
// no draining, open connections die with it) and returns once it is gone.
// StartAPIServer brings it back on the same port and etcd prefix, so every
// object is still there.
func (c *Cluster) KillAPIServer() { c.apiserver.kill() }

func (c *Cluster) path(name string) string { return filepath.Join(c.dir, name) }

// UserConfig returns a rest.Config that authenticates to this cluster as the
// given user and groups, with a client certificate signed by its CA.
func (c *Cluster) UserConfig(user string, groups []string) (*rest.Config, error) {
	cert, key, err := c.ca.issue(user, groups, false)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            c.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.ca.certPEM, CertData: cert, KeyData: key},
		QPS:             100,
		Burst:           200,
	}, nil
}

// Dynamic returns a dynamic client with admin rights.
func (c *Cluster) Dynamic() dynamic.Interface { return dynamic.NewForConfigOrDie(c.Config) }

func (c *Cluster) installCRDs(ctx context.Context, version string) error {
	manifests, err := crds.Manifests()
	if err != nil {
		return err
	}
	if version != "" {
		for _, m := range manifests {
			if err := crds.RestrictToVersion(m, version); err != nil {
				return err
			}
		}
	}
	return crds.Apply(ctx, c.Dynamic(), "localcluster", false, manifests)
}

// Stop stops every process the set started, clients before servers and
// apiservers before etcd, and removes a temporary work directory. It is safe
// to call more than once.
func (s *Set) Stop() {
	s.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, c := range s.Clusters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.stop()
			}()
		}
		wg.Wait()
		s.toxiproxy.stop()
		s.segment.stop()
		s.etcd.stop(10 * time.Second)
		if s.ownsDir {
			os.RemoveAll(s.WorkDir)
		}
	})
}

func (c *Cluster) stop() {
	c.dnsMu.Lock()
	for _, d := range c.dns {
		d.Stop()
	}
	c.dnsMu.Unlock()
	if c.podsStop != nil {
		c.podsStop()
		<-c.podsDone
	}
	c.node.stop()
	c.kcm.stop(5 * time.Second)
	c.apiserver.stop(5 * time.Second)
}

func (s *Set) writeKubeconfig() error {
	s.Kubeconfig = filepath.Join(s.WorkDir, "kubeconfig")
	s.DirectKubeconfig = s.Kubeconfig
	if s.toxiproxy == nil {
		return writeKubeconfig(s.Kubeconfig, s.Clusters, nil, true)
	}
	s.DirectKubeconfig = filepath.Join(s.WorkDir, "kubeconfig-direct")
	if err := writeKubeconfig(s.DirectKubeconfig, s.Clusters, nil, true); err != nil {
		return err
	}
	return writeKubeconfig(s.Kubeconfig, s.Clusters, nil, false)
}

// startProxies starts the Set's toxiproxy-server and one proxy per
// cluster, each rtt away.
func (s *Set) startProxies(ctx context.Context, rtt time.Duration) error {
	if err := s.startToxiproxy(ctx); err != nil {
		return err
	}
	for _, c := range s.Clusters {
		p, err := s.toxiproxy.createProxy(c.Name, "127.0.0.1:"+strconv.Itoa(c.port))
		if err != nil {
			return err
		}
		if err := p.SetRTT(rtt, 0); err != nil {
			return err
		}
		c.Proxy, c.ProxyServer = p, "https://"+p.Listen
		s.logf("%s: proxy %s -> %s (round trip %s)", c.Name, c.ProxyServer, c.Server, rtt)
	}
	return nil
}

// contextServer is the server a kubeconfig context for c names: its proxy
// when it has one, unless direct.
func (c *Cluster) contextServer(direct bool) string {
	if c.ProxyServer != "" && !direct {
		return c.ProxyServer
	}
	return c.Server
}

// writeKubeconfig writes one context per cluster, named after it, with the
// admin credentials (or the given config's) and namespace default. Its
// servers are the proxies where there are some, unless direct.
func writeKubeconfig(path string, clusters []*Cluster, override *rest.Config, direct bool) error {
	cfg := clientcmdapi.NewConfig()
	for _, c := range clusters {
		creds := c.Config
		if override != nil {
			creds = override
		}
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.contextServer(direct), CertificateAuthorityData: c.ca.certPEM}
		cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: creds.CertData, ClientKeyData: creds.KeyData}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name, Namespace: "default"}
	}
	if len(clusters) > 0 {
		cfg.CurrentContext = clusters[0].Name
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// WriteUserKubeconfig writes a kubeconfig whose context for this cluster
// authenticates as the given user (e.g. for RBAC tests).
func (c *Cluster) WriteUserKubeconfig(path, user string, groups []string) error {
	cfg, err := c.UserConfig(user, groups)
	if err != nil {
		return err
	}
	return writeKubeconfig(path, []*Cluster{c}, cfg, false)
}

// WriteUserKubeconfig writes a kubeconfig with one context per cluster
// (named after it) that authenticates as the given user and groups.
func (s *Set) WriteUserKubeconfig(path, user string, groups []string) error {
	cfg := clientcmdapi.NewConfig()
	for _, c := range s.Clusters {
		creds, err := c.UserConfig(user, groups)
		if err != nil {
			return err
		}
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.contextServer(false), CertificateAuthorityData: c.ca.certPEM}
		cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: creds.CertData, ClientKeyData: creds.KeyData}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name, Namespace: "default"}
	}
	cfg.CurrentContext = s.Clusters[0].Name
	return clientcmd.WriteToFile(*cfg, path)
}
