package localcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
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
	// device that drops what it is sent, as a real node routes it to its
	// default gateway: a connect() needs a route before kube-proxy's DNAT
	// rewrites the destination to an endpoint. What kube-proxy does not
	// rewrite goes nowhere.
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
