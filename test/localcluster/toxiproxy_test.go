package localcluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestProxyToxics runs the real toxiproxy-server in front of a TCP echo
// server and checks what each helper does to a connection through it:
// latency, a stall, a reset, unreachable and back. It needs only
// toxiproxy-server (make tools), not the cluster servers.
func TestProxyToxics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs toxiproxy-server")
	}
	tools := ToolsDir()
	if err := CheckFarAwayTools(tools); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &Set{WorkDir: t.TempDir(), toolsDir: tools}
	if err := s.startToxiproxy(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.toxiproxy.stop()
	echo := echoServer(t)
	p, err := s.toxiproxy.createProxy("echo", echo)
	if err != nil {
		t.Fatal(err)
	}
	if got := OpenProxy(s.ToxiproxyAPI(), "echo"); got.Name != p.Name {
		t.Fatalf("OpenProxy names %q", got.Name)
	}

	near := roundTrip(t, p.Listen)
	if n, err := p.Accepted(); err != nil || n != 1 {
		t.Errorf("Accepted after one connection: %d %v, want 1", n, err)
	}
	if err := p.SetRTT(200*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if far := roundTrip(t, p.Listen); far < 200*time.Millisecond {
		t.Errorf("a round trip with SetRTT(200ms) took %s (%s without)", far, near)
	}
	if err := p.SetRTT(0, 0); err != nil {
		t.Fatal(err)
	}
	if names, err := p.Toxics(); err != nil || len(names) != 0 {
		t.Errorf("toxics after SetRTT(0): %v %v, want none", names, err)
	}

	// A stall: the request goes out, nothing comes back.
	conn := dial(t, p.Listen)
	if err := p.Stall(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	var nerr net.Error
	if _, err := bufio.NewReader(conn).ReadString('\n'); !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Errorf("read through a stalled proxy: %v, want a timeout", err)
	}
	conn.Close()
	if err := p.Unstall(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p.Listen)

	// A reset on the server's next answer.
	conn = dial(t, p.Listen)
	if err := p.ResetPeer(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte("ping\n"))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil || errors.As(err, &nerr) && nerr.Timeout() {
		t.Errorf("read through a resetting proxy: %v, want the connection closed", err)
	}
	conn.Close()
	if err := p.StopResetting(); err != nil {
		t.Fatal(err)
	}

	// Unreachable, then back.
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.Listen, time.Second); err == nil {
		c.Close()
		t.Error("a disabled proxy accepted a connection")
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p.Listen)

	if err := p.SetBandwidth(1); err != nil {
		t.Fatal(err)
	}
	if err := p.ClearToxics(); err != nil {
		t.Fatal(err)
	}
	if names, _ := p.Toxics(); len(names) != 0 {
		t.Errorf("toxics after ClearToxics: %v", names)
	}
	if _, err := os.Stat(filepath.Join(s.WorkDir, "toxiproxy-server.log")); err != nil {
		t.Errorf("no log of toxiproxy-server: %v", err)
	}
}

func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip sends a line through addr and times its echo.
func roundTrip(t *testing.T, addr string) time.Duration {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through %s: %q %v", addr, line, err)
	}
	return time.Since(start)
}
