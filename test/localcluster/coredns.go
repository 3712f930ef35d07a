package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"
)

// DefaultCorefile serves cluster.local and, through the kubernetes plugin's
// multicluster option (CoreDNS >= 1.12.2), clusterset.local from the
// cluster's API. It is a text/template over CorefileParams.
const DefaultCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    errors
    kubernetes cluster.local clusterset.local {
        kubeconfig {{.Kubeconfig}} {{.Context}}
        multicluster clusterset.local
    }
}
`

// CorefileParams are the values a Corefile template is rendered with.
type CorefileParams struct {
	Port       int
	Kubeconfig string
	Context    string
}

// CoreDNS is a running CoreDNS serving one cluster on a loopback UDP port.
type CoreDNS struct {
	// Addr is host:port to send queries to.
	Addr     string
	Corefile string
	proc     *process
}

// StartCoreDNS renders the Corefile template (DefaultCorefile if empty),
// starts CoreDNS on a free loopback port reading this cluster's API with
// admin credentials, and waits until it answers for the cluster's
// "kubernetes" Service, which tells its informers have synced.
func (c *Cluster) StartCoreDNS(ctx context.Context, corefileTemplate string) (*CoreDNS, error) {
	if corefileTemplate == "" {
		corefileTemplate = DefaultCorefile
	}
	tmpl, err := template.New("Corefile").Parse(corefileTemplate)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.dnsMu.Lock()
	n := len(c.dns)
	c.dnsMu.Unlock()
	dir := filepath.Join(c.dir, "coredns-"+strconv.Itoa(n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	params := CorefileParams{Port: port, Kubeconfig: filepath.Join(dir, "kubeconfig"), Context: c.Name}
	if err := writeKubeconfig(params.Kubeconfig, []*Cluster{c}, nil, true); err != nil {
		return nil, err
	}
	var corefile bytes.Buffer
	if err := tmpl.Execute(&corefile, params); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, corefile.Bytes(), 0o644); err != nil {
		return nil, err
	}
	proc, err := startProcess(fmt.Sprintf("%s-coredns-%d", c.Name, n), c.set.WorkDir, c.set.binary(CoreDNSBinary), "-conf", path)
	if err != nil {
		return nil, err
	}
	d := &CoreDNS{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Corefile: corefile.String(), proc: proc}
	c.dnsMu.Lock()
	c.dns = append(c.dns, d)
	c.dnsMu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resolver := d.Resolver()
	err = waitFor(wctx, proc, "CoreDNS to answer", func(ctx context.Context) error {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := resolver.LookupHost(qctx, "kubernetes.default.svc.cluster.local.")
		return err
	})
	if err != nil {
		d.Stop()
		return nil, err
	}
	c.set.logf("%s: CoreDNS on %s", c.Name, d.Addr)
	return d, nil
}

// Resolver returns a Go DNS resolver that sends every query to this CoreDNS.
func (d *CoreDNS) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.Addr)
		},
	}
}

// Stop stops this CoreDNS.
func (d *CoreDNS) Stop() { d.proc.stop(2 * time.Second) }
