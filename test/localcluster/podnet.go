package localcluster

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podNet is a pod's namespace and the listeners answering in it.
type podNet struct {
	namespace string
	name      string
	ns        *netNS
	ip        string
	hostLink  string
	listeners []net.Listener
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
		hostLink, err := upWithAddress(h, pn.hostLink, netip.PrefixFrom(gateway, 32))
		if err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: ipNet(netip.PrefixFrom(addr, 32)), Src: net.IP(n.ip.AsSlice()), Scope: netlink.SCOPE_LINK})
	}); err != nil {
		return err
	}
	return pn.ns.handle(func(h *netlink.Handle) error {
		eth0, err := upWithAddress(h, "eth0", netip.PrefixFrom(addr, 32))
		if err != nil {
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
