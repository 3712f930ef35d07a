package localcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

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
		eth0, err := upWithAddress(h, "eth0", netip.PrefixFrom(n.ip, segPrefix.Bits()))
		if err != nil {
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
		services, err := upWithAddress(h, "services", netip.Prefix{})
		if err != nil {
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
