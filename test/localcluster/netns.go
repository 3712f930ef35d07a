package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netNS is a network namespace held only by an open file descriptor of this
// process (and by the processes and sockets inside it): no name under
// /var/run/netns, no mount. When the harness exits, however it exits, the
// kernel frees the namespace with every veth, address, route and iptables
// rule in it; nothing is left behind on the host.
type netNS struct {
	name string
	file *os.File
}

// newNetNS creates an empty network namespace (only a loopback device, which
// it brings up).
func newNetNS(name string) (*netNS, error) {
	var file *os.File
	err := onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating network namespace %s: %w", name, err)
		}
		var err error
		file, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		return nil, err
	}
	ns := &netNS{name: name, file: file}
	if err := ns.linkUp("lo"); err != nil {
		ns.close()
		return nil, err
	}
	return ns, nil
}

// do runs fn on an OS thread switched into the namespace: sockets fn creates
// and processes it starts live in the namespace.
func (n *netNS) do(fn func() error) error {
	return onLockedThread(func() error {
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering network namespace %s: %w", n.name, err)
		}
		return fn()
	})
}

// onLockedThread runs fn on a goroutine locked to its OS thread, then puts
// the thread back into the process's own network namespace. If that fails
// the goroutine exits still locked, and the Go runtime discards the thread
// rather than let other goroutines run in the wrong namespace.
func onLockedThread(fn func() error) error {
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			result <- err
			return
		}
		defer home.Close()
		fnErr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			result <- fmt.Errorf("returning to the host network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		result <- fnErr
	}()
	return <-result
}

// listen opens a TCP listener inside the namespace.
func (n *netNS) listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := n.do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// dialContext opens a TCP connection from inside the namespace.
func (n *netNS) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.do(func() error {
		var err error
		var dialer net.Dialer
		conn, err = dialer.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// sysctl sets a value under /proc/sys/net for this namespace (the files
// there belong to the namespace of the thread that opens them).
func (n *netNS) sysctl(key, value string) error {
	return n.do(func() error {
		path := filepath.Join("/proc/sys", filepath.FromSlash(key))
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", n.name, key, value, err)
		}
		return nil
	})
}

func (n *netNS) close() {
	if n != nil && n.file != nil {
		n.file.Close()
	}
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
		_, err := upWithAddress(h, name, netip.Prefix{})
		return err
	})
}

// upWithAddress gives the link name the address prefix (none if prefix is
// the zero Prefix), brings it up, and returns it.
func upWithAddress(h *netlink.Handle, name string, prefix netip.Prefix) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if prefix.IsValid() {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(prefix)}); err != nil {
			return nil, fmt.Errorf("addressing %s: %w", name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bringing %s up: %w", name, err)
	}
	return link, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
