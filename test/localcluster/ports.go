package localcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The servers of the test bed are told their port before they bind it, so
// the harness must pick a port nobody takes in between. Ports the kernel
// hands out for ":0" come from the ephemeral range, the same range every
// outgoing connection on the machine draws its source port from (the
// clients of the API servers alone open hundreds): a port probed free there
// can be taken a millisecond later, and the server then exits with "address
// already in use". Ports below that range are only ever taken by explicit
// binds, so the harness picks them at random there, and never twice.
var (
	portsMu  sync.Mutex
	portsOut = map[int]bool{}
)

// lowestPort is where the harness's ports start: above the well-known and
// commonly configured ports.
const lowestPort = 20000

// freePort returns a loopback port, outside the ephemeral range, free for
// both TCP and UDP (CoreDNS listens on both), and not handed out before by
// this process.
func freePort() (int, error) {
	highest := ephemeralLow() - 1
	if highest <= lowestPort {
		highest = lowestPort + 5000
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		port := lowestPort + rand.IntN(highest-lowestPort+1)
		if portsOut[port] || !portFree(port) {
			continue
		}
		portsOut[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no loopback port free for both TCP and UDP in %d-%d", lowestPort, highest)
}

func portFree(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 by
// default on Linux).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
