package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The far-away test bed: with Options.FarAway, every cluster's API server
// is also reachable through a Toxiproxy proxy on 127.0.0.1 (one
// toxiproxy-server per Set), and the Set's kubeconfig points through it.
// Tests then add latency, bandwidth limits, stalls and resets per cluster,
// or make a cluster unreachable, through Toxiproxy's REST API. Toxiproxy
// is a TCP proxy: TLS passes through it unchanged, and the API server's
// certificate (issued for 127.0.0.1, whatever the port) still matches.

// toxiproxyServer is the running toxiproxy-server and its REST API.
type toxiproxyServer struct {
	proc *process
	api  string // http://127.0.0.1:PORT
	http *http.Client
}

func (s *Set) startToxiproxy(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	proc, err := startProcess("toxiproxy-server", s.WorkDir, s.binary(ToxiproxyBinary),
		"-host=127.0.0.1", "-port="+strconv.Itoa(port))
	if err != nil {
		return err
	}
	s.toxiproxy = &toxiproxyServer{proc: proc, api: fmt.Sprintf("http://127.0.0.1:%d", port), http: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return waitFor(ctx, proc, "toxiproxy-server to serve", func(ctx context.Context) error {
		return httpGetOK(ctx, s.toxiproxy.api+"/version")
	})
}

// StartProxies puts a proxy, rtt away, in front of every API server of a
// running Set started without Options.FarAway, and writes a kubeconfig
// whose servers are the proxies (kubeconfig-far in the work directory),
// returned. Set.Kubeconfig stays direct. Stop stops the proxies too.
func (s *Set) StartProxies(ctx context.Context, rtt time.Duration) (string, error) {
	if s.toxiproxy != nil {
		return "", errors.New("localcluster: the clusters already have proxies")
	}
	if err := CheckFarAwayTools(s.toolsDir); err != nil {
		return "", err
	}
	if err := s.startProxies(ctx, rtt); err != nil {
		return "", err
	}
	path := filepath.Join(s.WorkDir, "kubeconfig-far")
	return path, writeKubeconfig(path, s.Clusters, nil, false)
}

// ToxiproxyAPI is the address of the toxiproxy-server's REST API
// (http://127.0.0.1:PORT), or "" without Options.FarAway.
func (s *Set) ToxiproxyAPI() string {
	if s.toxiproxy == nil {
		return ""
	}
	return s.toxiproxy.api
}

// OpenProxy returns the proxy named name of the toxiproxy-server at api
// (a Set's ToxiproxyAPI), for a process other than the Set's own (e.g.
// changing the latency of running demo clusters).
func OpenProxy(api, name string) *Proxy {
	return &Proxy{Name: name, server: &toxiproxyServer{api: api, http: &http.Client{Timeout: 10 * time.Second}}}
}

func (t *toxiproxyServer) stop() {
	if t != nil {
		t.proc.stop(5 * time.Second)
	}
}

// call sends one request to the REST API and decodes a JSON answer into
// out (when not nil); any status but 2xx is an error with the body.
func (t *toxiproxyServer) call(method, path string, body, out any) error {
	var in io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		in = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, t.api+path, in)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Proxy is one cluster's Toxiproxy proxy: a listener on 127.0.0.1 that
// forwards to the cluster's API server, through the toxics set on it.
type Proxy struct {
	// Name is the proxy's name in Toxiproxy (the cluster's name).
	Name string
	// Listen is the proxy's address, host:port on 127.0.0.1.
	Listen string
	server *toxiproxyServer
}

type proxySpec struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

func (t *toxiproxyServer) createProxy(name, upstream string) (*Proxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	spec := proxySpec{Name: name, Listen: "127.0.0.1:" + strconv.Itoa(port), Upstream: upstream, Enabled: true}
	if err := t.call(http.MethodPost, "/proxies", spec, nil); err != nil {
		return nil, err
	}
	return &Proxy{Name: name, Listen: spec.Listen, server: t}, nil
}

// Stream is the direction a toxic acts on: Downstream is the API server's
// answers to the client, Upstream the client's requests.
type Stream string

const (
	Downstream Stream = "downstream"
	Upstream   Stream = "upstream"
)

// Toxic is one toxic as Toxiproxy's API takes it.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     Stream         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// AddToxic adds a toxic to the proxy. It acts on the connections open now
// and on every new one, until RemoveToxic.
func (p *Proxy) AddToxic(t Toxic) error {
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	return p.server.call(http.MethodPost, "/proxies/"+p.Name+"/toxics", t, nil)
}

// RemoveToxic removes a toxic by name.
func (p *Proxy) RemoveToxic(name string) error {
	return p.server.call(http.MethodDelete, "/proxies/"+p.Name+"/toxics/"+name, nil, nil)
}

// Toxics lists the names of the toxics set on the proxy.
func (p *Proxy) Toxics() ([]string, error) {
	var list []Toxic
	if err := p.server.call(http.MethodGet, "/proxies/"+p.Name+"/toxics", nil, &list); err != nil {
		return nil, err
	}
	names := make([]string, len(list))
	for i, t := range list {
		names[i] = t.Name
	}
	return names, nil
}

// ClearToxics removes every toxic from the proxy.
func (p *Proxy) ClearToxics() error {
	names, err := p.Toxics()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := p.RemoveToxic(n); err != nil {
			return err
		}
	}
	return nil
}

// Accepted counts the client connections the proxy has accepted so far,
// from toxiproxy-server's log: a reconnection after a fault shows as one
// more. Only for the Set's own proxies (not OpenProxy's).
func (p *Proxy) Accepted() (int, error) {
	if p.server.proc == nil {
		return 0, errors.New("localcluster: Accepted needs the Set's own toxiproxy-server")
	}
	data, err := os.ReadFile(p.server.proc.logPath)
	if err != nil {
		return 0, err
	}
	name, _ := json.Marshal(p.Name)
	n := 0
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Contains(line, []byte(`"name":`+string(name))) && bytes.Contains(line, []byte(`"message":"Accepted client"`)) {
			n++
		}
	}
	return n, nil
}

// Toxic names the helpers below use; one of each kind per proxy.
const (
	LatencyUp   = "latency-up"
	LatencyDown = "latency-down"
	BandwidthT  = "bandwidth"
	TimeoutT    = "timeout"
	ResetPeerT  = "reset-peer"
)

// SetRTT makes the cluster rtt away, ± jitter: half of each on the way
// there and half on the way back (Toxiproxy delays each chunk of data by
// latency plus a random amount within ±jitter). An rtt of zero removes the
// latency. Calling it again replaces the figures.
func (p *Proxy) SetRTT(rtt, jitter time.Duration) error {
	for _, name := range []string{LatencyUp, LatencyDown} {
		if err := p.removeIfPresent(name); err != nil {
			return err
		}
	}
	if rtt <= 0 && jitter <= 0 {
		return nil
	}
	for name, stream := range map[string]Stream{LatencyUp: Upstream, LatencyDown: Downstream} {
		if err := p.AddToxic(Toxic{Name: name, Type: "latency", Stream: stream, Attributes: map[string]any{
			"latency": (rtt / 2).Milliseconds(),
			"jitter":  (jitter / 2).Milliseconds(),
		}}); err != nil {
			return err
		}
	}
	return nil
}

// SetBandwidth limits the API server's answers to kbps kilobytes per
// second; zero removes the limit.
func (p *Proxy) SetBandwidth(kbps int64) error {
	if err := p.removeIfPresent(BandwidthT); err != nil {
		return err
	}
	if kbps <= 0 {
		return nil
	}
	return p.AddToxic(Toxic{Name: BandwidthT, Type: "bandwidth", Stream: Downstream, Attributes: map[string]any{"rate": kbps}})
}

// Stall stops all data from clients to the API server (requests sent,
// dropped, never answered), as a hung server or a black-holed route does.
// New connections are accepted, then stall too (their TLS handshake never
// completes).
func (p *Proxy) Stall() error {
	return p.AddToxic(Toxic{Name: TimeoutT, Type: "timeout", Stream: Upstream, Attributes: map[string]any{"timeout": 0}})
}

// Unstall removes the stall; Toxiproxy closes the connections that were
// stalled (their dropped data cannot be replayed), new ones pass.
func (p *Proxy) Unstall() error { return p.RemoveToxic(TimeoutT) }

// ResetPeer resets (TCP RST) every connection on the next data the API
// server sends on it, including connections opened later, until
// StopResetting.
func (p *Proxy) ResetPeer() error {
	return p.AddToxic(Toxic{Name: ResetPeerT, Type: "reset_peer", Stream: Downstream, Attributes: map[string]any{"timeout": 0}})
}

// StopResetting removes the reset_peer toxic.
func (p *Proxy) StopResetting() error { return p.RemoveToxic(ResetPeerT) }

// Disable closes every connection through the proxy and stops listening:
// the cluster is unreachable (connection refused) until Enable.
func (p *Proxy) Disable() error { return p.setEnabled(false) }

// Enable listens again after Disable.
func (p *Proxy) Enable() error { return p.setEnabled(true) }

func (p *Proxy) setEnabled(on bool) error {
	return p.server.call(http.MethodPost, "/proxies/"+p.Name, map[string]bool{"enabled": on}, nil)
}

func (p *Proxy) removeIfPresent(name string) error {
	names, err := p.Toxics()
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return p.RemoveToxic(name)
		}
	}
	return nil
}
