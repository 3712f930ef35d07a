package localcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The data plane (Options.DataPlane) makes the local clusters carry traffic,
// without containers, as root, entirely inside network namespaces the
// harness creates:
//
//   - one "segment" namespace with a bridge: the flat network all nodes
//     share, as the nodes of several clusters in one VPC do;
//   - per cluster a "node" namespace on that bridge at NodeIP, routing every
//     other cluster's PodCIDR to that cluster's node, and running a real
//     kube-proxy (iptables mode) against the cluster's API, reached through
//     a relay on the node's own loopback;
//   - per pod a namespace with a veth to its node, the pod's IP, and a
//     listener on each TCP container port that answers with
//     "<cluster>/<pod>" and closes.
//
// Every address is in 198.18.0.0/15 (benchmarking range): pods in PodCIDR,
// nodes in 198.18.255.0/24, Services in ServiceCIDR. The host's routes,
// addresses and iptables are never touched: the namespaces are held by file
// descriptors of the harness, so they vanish with everything in them when it
// exits, however it exits.

// KubeProxyBinary is the data plane's kube-proxy, built by `make tools`.
const KubeProxyBinary = "kube-proxy"

const (
	segmentPrefix = "198.18.255.0/24"
	// serviceRange covers every cluster's ServiceCIDR. Nodes route it to a
	// device that drops what it is sent, as a real node routes it to its default gateway: a
	// connect() needs a route before kube-proxy's DNAT rewrites the
	// destination to an endpoint. What kube-proxy does not rewrite goes
	// nowhere.
	serviceRange = "198.19.0.0/16"
	// relayPort is where a node reaches its cluster's API: a listener on the
	// node's loopback that the harness relays to the apiserver on the host's.
	relayPort = 6443
	// maxDataPlaneClusters keeps every PodCIDR below the node segment.
	maxDataPlaneClusters = 15
)

// DataPlaneSupported tells whether this machine can run the data plane: it
// needs root (network namespaces, veths, iptables in them), iptables and
// iptables-restore on PATH (kube-proxy runs them), and kube-proxy in
// toolsDir (empty means ToolsDir()). The error says what is missing.
func DataPlaneSupported(toolsDir string) error {
	if toolsDir == "" {
		toolsDir = ToolsDir()
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and iptables)")
	}
	for _, tool := range []string{"iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" on PATH (apt-get install iptables)")
		}
	}
	if _, err := os.Stat(filepath.Join(toolsDir, KubeProxyBinary)); err != nil {
		missing = append(missing, filepath.Join(toolsDir, KubeProxyBinary)+" (make tools)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the local clusters' data plane needs %s", strings.Join(missing, ", "))
	}
	return nil
}

// NodeIP is the address of the cluster's node on the segment all nodes
// share; it is the Node's InternalIP and every pod's hostIP.
func (c *Cluster) NodeIP() string {
	addr := netip.MustParsePrefix(segmentPrefix).Addr()
	for range c.index + 1 {
		addr = addr.Next()
	}
	return addr.String()
}

// HasDataPlane tells whether the set was started with a data plane.
func (s *Set) HasDataPlane() bool { return s.segment != nil }

// segment is the namespace holding the bridge every node is plugged into.
type segment struct {
	ns     *netNS
	bridge *netlink.Bridge
}

func (s *Set) startSegment() error {
	if len(s.Clusters) > maxDataPlaneClusters {
		return fmt.Errorf("the data plane supports at most %d clusters", maxDataPlaneClusters)
	}
	ns, err := newNetNS("segment")
	if err != nil {
		return err
	}
	seg := &segment{ns: ns, bridge: &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "nodes"}}}
	if err := ns.handle(func(h *netlink.Handle) error {
		if err := h.LinkAdd(seg.bridge); err != nil {
			return fmt.Errorf("segment: adding bridge: %w", err)
		}
		return h.LinkSetUp(seg.bridge)
	}); err != nil {
		ns.close()
		return err
	}
	s.segment = seg
	return nil
}

func (seg *segment) stop() {
	if seg != nil {
		seg.ns.close()
	}
}

// node is a cluster's node namespace and what runs in it.
type node struct {
	cluster *Cluster
	ns      *netNS
	ip      netip.Addr
	relay   net.Listener
	proxy   *process

	mu       sync.Mutex
	pods     map[types.UID]*podNet
	nextLink int
}

// podNet is a pod's namespace and the listeners answering in it.
type podNet struct {
	namespace string
	name      string
	ns        *netNS
	ip        string
	hostLink  string
	listeners []net.Listener
}

// startNode builds the node namespace, plugs it into the segment, starts the
// API relay and kube-proxy, and waits until kube-proxy reports healthy (its
// first full sync of the iptables rules is done).
func (c *Cluster) startNode(ctx context.Context) error {
	ns, err := newNetNS(c.Name + "-node")
	if err != nil {
		return err
	}
	n := &node{cluster: c, ns: ns, ip: netip.MustParseAddr(c.NodeIP()), pods: map[types.UID]*podNet{}}
	c.node = n
	if err := n.plumb(); err != nil {
		return fmt.Errorf("%s: node network: %w", c.Name, err)
	}
	if err := n.startRelay(); err != nil {
		return fmt.Errorf("%s: API relay: %w", c.Name, err)
	}
	return n.startKubeProxy(ctx)
}

func (n *node) plumb() error {
	c := n.cluster
	seg := c.set.segment
	if err := n.ns.sysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	segPrefix := netip.MustParsePrefix(segmentPrefix)
	// The node's uplink: eth0 here, <cluster name> on the segment's bridge.
	uplink := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: c.Name, PeerNamespace: netlink.NsFd(seg.ns.fd())}
	if err := n.ns.handle(func(h *netlink.Handle) error {
		if err := h.LinkAdd(uplink); err != nil {
			return fmt.Errorf("adding uplink: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := seg.ns.handle(func(h *netlink.Handle) error {
		port, err := h.LinkByName(c.Name)
		if err != nil {
			return err
		}
		if err := h.LinkSetMaster(port, seg.bridge); err != nil {
			return err
		}
		return h.LinkSetUp(port)
	}); err != nil {
		return fmt.Errorf("plugging into the segment: %w", err)
	}
	return n.ns.handle(func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.ip, segPrefix.Bits()))}); err != nil {
			return fmt.Errorf("addressing eth0: %w", err)
		}
		if err := h.LinkSetUp(eth0); err != nil {
			return err
		}
		for _, other := range c.set.Clusters {
			if other == c {
				continue
			}
			route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix(other.PodCIDR())), Gw: net.ParseIP(other.NodeIP())}
			if err := h.RouteAdd(route); err != nil {
				return fmt.Errorf("routing %s's pods: %w", other.Name, err)
			}
		}
		// A veth whose peer stays down: what is sent on it is dropped (the
		// kernel of this machine may lack the dummy device's module).
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "services"}, PeerName: "services-sink"}); err != nil {
			return fmt.Errorf("adding the services device: %w", err)
		}
		services, err := h.LinkByName("services")
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(services); err != nil {
			return err
		}
		route := &netlink.Route{LinkIndex: services.Attrs().Index, Dst: ipNet(netip.MustParsePrefix(serviceRange)), Src: net.IP(n.ip.AsSlice()), Scope: netlink.SCOPE_LINK}
		if err := h.RouteAdd(route); err != nil {
			return fmt.Errorf("routing the service range: %w", err)
		}
		return nil
	})
}

// startRelay listens on the node's loopback and pipes each connection to the
// apiserver on the host's loopback, which the node cannot reach itself.
func (n *node) startRelay() error {
	l, err := n.ns.listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(relayPort)))
	if err != nil {
		return err
	}
	n.relay = l
	upstream := strings.TrimPrefix(n.cluster.Server, "https://")
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go relay(conn, upstream)
		}
	}()
	return nil
}

func relay(down net.Conn, upstreamAddr string) {
	defer down.Close()
	up, err := net.DialTimeout("tcp", upstreamAddr, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
}

func (n *node) startKubeProxy(ctx context.Context) error {
	c := n.cluster
	kubeconfig := c.path("kube-proxy.kubeconfig")
	// kube-proxy authenticates as system:kube-proxy, the user the
	// apiserver's bootstrap policy grants the system:node-proxier role.
	creds, err := c.UserConfig("system:kube-proxy", nil)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(relayPort)), CertificateAuthorityData: c.ca.certPEM}
	cfg.AuthInfos["kube-proxy"] = &clientcmdapi.AuthInfo{ClientCertificateData: creds.CertData, ClientKeyData: creds.KeyData}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "kube-proxy"}
	cfg.CurrentContext = "local"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return err
	}
	err = n.ns.do(func() error {
		var err error
		n.proxy, err = startProcess(c.Name+"-kube-proxy", c.set.WorkDir, c.set.binary(KubeProxyBinary),
			"--kubeconfig="+kubeconfig,
			"--proxy-mode=iptables",
			"--hostname-override="+NodeName,
			"--healthz-bind-address=127.0.0.1:10256",
			"--metrics-bind-address=127.0.0.1:10249",
			// Zero leaves the conntrack table size and timeouts alone: they
			// are host-wide, and no test needs them changed.
			"--conntrack-max-per-core=0",
			"--conntrack-min=0",
			"--conntrack-tcp-timeout-established=0",
			"--conntrack-tcp-timeout-close-wait=0",
			"--v=2",
		)
		return err
	})
	if err != nil {
		return err
	}
	health := &http.Client{Transport: &http.Transport{DialContext: n.ns.dialContext}, Timeout: 2 * time.Second}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitFor(wctx, n.proxy, c.Name+" kube-proxy to be healthy", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10256/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := health.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return err
	}
	c.set.logf("%s: node %s, kube-proxy (iptables) healthy", c.Name, n.ip)
	return nil
}

// ensurePod gives a pod its namespace, address and listeners, once: the
// pod stand-in calls it before it reports the pod's IP, as a kubelet runs
// the network plugin before it does.
func (n *node) ensurePod(pod *corev1.Pod, ip string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if existing, ok := n.pods[pod.UID]; ok {
		if existing.ip == ip {
			return nil
		}
		existing.close()
		delete(n.pods, pod.UID)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return err
	}
	ns, err := newNetNS(pod.Namespace + "/" + pod.Name)
	if err != nil {
		return err
	}
	pn := &podNet{namespace: pod.Namespace, name: pod.Name, ns: ns, ip: ip, hostLink: "pod" + strconv.Itoa(n.nextLink)}
	n.nextLink++
	if err := n.plumbPod(pn, addr); err != nil {
		pn.close()
		return fmt.Errorf("%s: pod %s/%s network: %w", n.cluster.Name, pod.Namespace, pod.Name, err)
	}
	answer := n.cluster.Name + "/" + pod.Name + "\n"
	for _, ctr := range pod.Spec.Containers {
		for _, port := range ctr.Ports {
			if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
				continue
			}
			l, err := ns.listen(net.JoinHostPort(ip, strconv.Itoa(int(port.ContainerPort))))
			if err != nil {
				pn.close()
				return fmt.Errorf("%s: pod %s/%s listening on %d: %w", n.cluster.Name, pod.Namespace, pod.Name, port.ContainerPort, err)
			}
			pn.listeners = append(pn.listeners, l)
			go answerEach(l, answer)
		}
	}
	n.pods[pod.UID] = pn
	return nil
}

func (n *node) plumbPod(pn *podNet, addr netip.Addr) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: pn.hostLink}, PeerName: "eth0", PeerNamespace: netlink.NsFd(pn.ns.fd())}
	// A pod's default gateway is its node's IP, which each node-side veth
	// holds too (as a /32), so the node answers the pod's ARP for it.
	gateway := n.ip
	if err := n.ns.handle(func(h *netlink.Handle) error {
		if err := h.LinkAdd(veth); err != nil {
			return err
		}
		hostLink, err := h.LinkByName(pn.hostLink)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(hostLink, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(gateway, 32))}); err != nil {
			return err
		}
		if err := h.LinkSetUp(hostLink); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: ipNet(netip.PrefixFrom(addr, 32)), Src: net.IP(n.ip.AsSlice()), Scope: netlink.SCOPE_LINK})
	}); err != nil {
		return err
	}
	return pn.ns.handle(func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, 32))}); err != nil {
			return err
		}
		if err := h.LinkSetUp(eth0); err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gateway, 32)), Scope: netlink.SCOPE_LINK}); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gateway.AsSlice())})
	})
}

// answerEach writes answer on every connection and closes it.
func answerEach(l net.Listener, answer string) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(conn, answer)
		}()
	}
}

// removePod takes a deleted pod's namespace down with its veth and
// listeners.
func (n *node) removePod(uid types.UID) {
	n.mu.Lock()
	pn := n.pods[uid]
	delete(n.pods, uid)
	n.mu.Unlock()
	pn.close()
}

func (pn *podNet) close() {
	if pn == nil {
		return
	}
	for _, l := range pn.listeners {
		l.Close()
	}
	pn.ns.close()
}

func (n *node) stop() {
	if n == nil {
		return
	}
	n.proxy.stop(5 * time.Second)
	if n.relay != nil {
		n.relay.Close()
	}
	n.mu.Lock()
	for uid, pn := range n.pods {
		pn.close()
		delete(n.pods, uid)
	}
	n.mu.Unlock()
	n.ns.close()
}

// NodeNetNS is the path of the cluster's node network namespace, for
// `nsenter --net=PATH` (as root) to run a command on the node; "" without a
// data plane. It is the namespace of the node's kube-proxy process.
func (c *Cluster) NodeNetNS() string {
	if c.node == nil || c.node.proxy == nil {
		return ""
	}
	return fmt.Sprintf("/proc/%d/ns/net", c.node.proxy.cmd.Process.Pid)
}

// ErrNoDataPlane is returned by Connect on a set started without one.
var ErrNoDataPlane = errors.New("the clusters were started without a data plane (Options.DataPlane)")

// Connect opens a TCP connection from the cluster's node to address
// (host:port, an IP: resolve names with a CoreDNS of the cluster first, as
// the node's resolver would) and returns what the other end answered,
// "<cluster>/<pod>" for a pod's listener. Connections to a Service's IP go
// through kube-proxy's rules for the node's own traffic (nat OUTPUT).
func (c *Cluster) Connect(ctx context.Context, address string) (string, error) {
	if c.node == nil {
		return "", ErrNoDataPlane
	}
	return connectAndRead(ctx, c.node.ns, address)
}

// ConnectFromPod is Connect from inside a pod of the cluster, as a client
// container would: its traffic leaves through the pod's veth, and a
// Service's IP is rewritten by kube-proxy's rules for forwarded traffic
// (nat PREROUTING) on the pod's node.
func (c *Cluster) ConnectFromPod(ctx context.Context, namespace, pod, address string) (string, error) {
	if c.node == nil {
		return "", ErrNoDataPlane
	}
	c.node.mu.Lock()
	var ns *netNS
	for _, pn := range c.node.pods {
		if pn.namespace == namespace && pn.name == pod {
			ns = pn.ns
		}
	}
	c.node.mu.Unlock()
	if ns == nil {
		return "", fmt.Errorf("%s: pod %s/%s has no network (not running on the node, or not yet)", c.Name, namespace, pod)
	}
	return connectAndRead(ctx, ns, address)
}

// connectAndRead connects from inside ns and reads one line, within 2s.
func connectAndRead(ctx context.Context, ns *netNS, address string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := ns.dialContext(ctx, "tcp", address)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(deadline)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the answer from %s: %w", address, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// handle runs fn with a netlink handle bound to the namespace.
func (n *netNS) handle(fn func(*netlink.Handle) error) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(n.fd()))
	if err != nil {
		return fmt.Errorf("%s: netlink: %w", n.name, err)
	}
	defer h.Close()
	return fn(h)
}

func (n *netNS) fd() int { return int(n.file.Fd()) }

func (n *netNS) linkUp(name string) error {
	return n.handle(func(h *netlink.Handle) error {
		link, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		return h.LinkSetUp(link)
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
