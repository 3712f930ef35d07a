package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// TestDemo runs `make demo`'s command and holds its transcript to what
// really ran: a `$` line is a command this run executed (the plugin, or dig
// where dig is installed); a DNS query without dig is a `#` comment.
func TestDemo(t *testing.T) {
	needServers(t)
	plugin := pluginrun.Binary(t)
	bin := buildCommand(t)
	out, err := runCommand(t, 5*time.Minute, bin, "demo", "--plugin", plugin)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	_, digErr := exec.LookPath("dig")
	dataPlane := localcluster.DataPlaneSupported("")
	shell := digErr == nil && haveCommands("nsenter", "bash") && dataPlane == nil
	var digs, queries, connects, mysql0, mysql1 int
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "$ kubectl mcs "):
		case strings.HasPrefix(line, "$ dig ") && digErr == nil:
			digs++
		case strings.HasPrefix(line, "$ for ip in $(dig +short @127.0.0.1 -p ") && shell:
			connects++
		case strings.HasPrefix(line, "$"):
			t.Errorf("the transcript shows a command that did not run: %q", line)
		case strings.HasPrefix(line, "# DNS query to "):
			queries++
		case strings.HasPrefix(line, "# cluster2's node: connect ") && !shell:
			connects++
		}
		switch {
		case line == "cluster1/mysql-0" || strings.HasSuffix(line, "-> answered by cluster1/mysql-0"):
			mysql0++
		case line == "cluster1/mysql-1" || strings.HasSuffix(line, "-> answered by cluster1/mysql-1"):
			mysql1++
		}
	}
	if digErr == nil && (digs != 5 || queries != 0) {
		t.Errorf("dig is installed: %d dig runs and %d queries from the demo itself, want 5 and 0", digs, queries)
	}
	if digErr != nil && (digs != 0 || queries != 5 || strings.Count(out, "# dig is not installed") != 1) {
		t.Errorf("dig is not installed: %d dig runs and %d queries from the demo itself, want 0 and 5, and one note", digs, queries)
	}
	// Seed step 4: where the data plane runs, mysql-0 answers through its
	// three names and the service name, mysql-1 through the service name.
	switch {
	case dataPlane == nil:
		want := 5 // one per address: the service name has two
		if shell {
			want = 4 // one shell line per name
		}
		if connects != want || mysql0 != 4 || mysql1 != 1 {
			t.Errorf("seed step 4 (shell lines: %v) shows %d connecting lines, want %d, and answers by mysql-0 %d times, by mysql-1 %d times, want 4 and 1", shell, connects, want, mysql0, mysql1)
		}
	case os.Getenv(pluginrun.RequireDataPlaneEnv) != "":
		t.Errorf("the data plane is required here: %v", dataPlane)
	case connects != 0 || mysql0+mysql1 != 0 || !strings.Contains(out, "Seed step 4 (connecting to mysql-0 from cluster2) skipped: "):
		t.Errorf("without a data plane the demo must say step 4 is skipped, and connect nowhere (%d connecting lines)", connects)
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", out)
	}
}

// TestDNSQuerier checks both ways of showing a DNS query against a small DNS
// server of the test's own: as this program's query where dig is missing,
// and as dig's real run where dig is on PATH.
func TestDNSQuerier(t *testing.T) {
	addr := fakeDNS(t, map[string][]string{"mysql.test.": {"198.18.0.2", "198.18.0.1"}})
	ctx := context.Background()

	t.Run("without dig", func(t *testing.T) {
		var out bytes.Buffer
		q := &dnsQuerier{out: &out, server: "the test DNS", addr: addr, timeout: 2 * time.Second}
		for range 2 {
			if err := q.query(ctx, "mysql.test", []string{"198.18.0.1", "198.18.0.2"}); err != nil {
				t.Fatal(err)
			}
		}
		line := "# DNS query to the test DNS at " + addr + ": mysql.test -> 198.18.0.1, 198.18.0.2\n"
		if strings.Count(out.String(), line) != 2 || strings.Count(out.String(), "# dig is not installed") != 1 || strings.Contains(out.String(), "$") {
			t.Errorf("want two query comments and one note that dig is not installed, no $ line; got\n%s", out.String())
		}
		q.timeout = 500 * time.Millisecond
		if err := q.query(ctx, "mysql.test", []string{"198.18.0.1"}); err == nil || !strings.Contains(err.Error(), "want [198.18.0.1]") {
			t.Errorf("a wrong answer: got error %v, want one naming the expected answer", err)
		}
	})

	t.Run("with dig", func(t *testing.T) {
		dig, err := exec.LookPath("dig")
		if err != nil {
			t.Skip("dig is not installed (Debian: apt-get install dnsutils, as .ci/run does)")
		}
		var out bytes.Buffer
		q := &dnsQuerier{out: &out, server: "the test DNS", addr: addr, dig: dig, timeout: 2 * time.Second}
		if err := q.query(ctx, "mysql.test", []string{"198.18.0.1", "198.18.0.2"}); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		host, port, _ := net.SplitHostPort(addr)
		want := "\n$ dig @" + host + " -p " + port + " +short mysql.test\n"
		if !strings.HasPrefix(out.String(), want) || strings.Contains(out.String(), "#") ||
			!strings.Contains(out.String(), "198.18.0.1\n") || !strings.Contains(out.String(), "198.18.0.2\n") {
			t.Errorf("want %q and dig's answer; got\n%s", want, out.String())
		}
	})
}

// fakeDNS serves A records on a loopback UDP port, authoritatively: other
// names get NXDOMAIN, other types of a known name no answer.
func fakeDNS(t *testing.T, records map[string][]string) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], records); resp != nil {
				_, _ = conn.WriteTo(resp, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// dnsAnswer answers a one-question query (RFC 1035, section 4).
func dnsAnswer(req []byte, records map[string][]string) []byte {
	if len(req) < 12 || binary.BigEndian.Uint16(req[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(req) && req[i] != 0 {
		l := int(req[i])
		if i+1+l > len(req) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(req[i+1:i+1+l])))
		i += 1 + l
	}
	if i+5 > len(req) {
		return nil
	}
	question := req[12 : i+5]
	qtype := binary.BigEndian.Uint16(req[i+1:])
	addrs, known := records[strings.Join(labels, ".")+"."]
	// Response, authoritative, recursion desired copied, recursion available.
	flags := uint16(0x8480) | binary.BigEndian.Uint16(req[2:])&0x0100
	if !known {
		flags |= 3 // NXDOMAIN
	}
	var answers [][]byte
	if qtype == 1 {
		for _, a := range addrs {
			rr := []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4}
			answers = append(answers, append(rr, net.ParseIP(a).To4()...))
		}
	}
	resp := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(req))
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = append(resp, 0, 0, 0, 0)
	resp = append(resp, question...)
	for _, rr := range answers {
		resp = append(resp, rr...)
	}
	return resp
}
