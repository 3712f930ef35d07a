package reconcile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// servicePortsOf returns the ports a Service exports, protocol defaulted to
// TCP as the API server would, in canonical order.
func servicePortsOf(svc *corev1.Service) []mcsv1beta1.ServicePort {
	ports := make([]mcsv1beta1.ServicePort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		ports = append(ports, mcsv1beta1.ServicePort{
			Name:        p.Name,
			Protocol:    protocolOrTCP(p.Protocol),
			AppProtocol: copyPtr(p.AppProtocol),
			Port:        p.Port,
		})
	}
	slices.SortFunc(ports, compareServicePorts)
	return ports
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// compareServicePorts orders by port number, then protocol, then name; the
// union never holds two ports with the same number and protocol, so this is
// a total order on it.
func compareServicePorts(a, b mcsv1beta1.ServicePort) int {
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(renderOptional(a.AppProtocol), renderOptional(b.AppProtocol))
}

func sameServicePort(a, b mcsv1beta1.ServicePort) bool {
	return compareServicePorts(a, b) == 0
}

// portUnion is the merged port list of a service and the ports that could
// not join it.
type portUnion struct {
	ports   []mcsv1beta1.ServicePort
	dropped []string
}

// unionPorts merges the ports of all valid exports, in precedence order, so
// that every clash is won by the older export. A port joins the union unless
// its name is already taken by a different port, its protocol and number are
// already served under another name, or it would leave the union with an
// unnamed port among several (a Service with several ports must name them).
func unionPorts(valid []*exportedService) portUnion {
	var u portUnion
	var owners []string // owners[i] is the cluster that contributed u.ports[i]
	for _, e := range valid {
	next:
		for _, p := range e.ports {
			for i, q := range u.ports {
				switch {
				case sameServicePort(p, q):
					continue next
				case p.Name != "" && p.Name == q.Name:
					u.dropped = append(u.dropped, fmt.Sprintf("%s %s (name taken by %s from %s)",
						e.cluster, formatPort(p), formatPort(q), owners[i]))
					continue next
				case p.Protocol == q.Protocol && p.Port == q.Port:
					u.dropped = append(u.dropped, fmt.Sprintf("%s %s (port taken by %s from %s)",
						e.cluster, formatPort(p), formatPort(q), owners[i]))
					continue next
				}
			}
			if len(u.ports) > 0 && (p.Name == "" || slices.ContainsFunc(u.ports, func(q mcsv1beta1.ServicePort) bool { return q.Name == "" })) {
				u.dropped = append(u.dropped, fmt.Sprintf("%s %s (several ports must all be named)", e.cluster, formatPort(p)))
				continue
			}
			u.ports = append(u.ports, p)
			owners = append(owners, e.cluster)
		}
	}
	slices.SortFunc(u.ports, compareServicePorts)
	if u.ports == nil {
		u.ports = []mcsv1beta1.ServicePort{}
	}
	return u
}

// portConflict reports PortConflict when the exports do not all expose the
// same ports. The union is served either way; the message lists it, what
// each cluster has and what had to be dropped.
func portConflict(valid []*exportedService, union portUnion, note string) (conflict, bool) {
	agree := true
	for _, e := range valid[1:] {
		if !slices.EqualFunc(e.ports, valid[0].ports, sameServicePort) {
			agree = false
			break
		}
	}
	if agree {
		return conflict{}, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ports: serving the union %s, %s wins clashes %s", formatPorts(union.ports), valid[0].cluster, note)
	for _, e := range valid {
		fmt.Fprintf(&b, "; %s has %s", e.cluster, formatPorts(e.ports))
	}
	if len(union.dropped) > 0 {
		b.WriteString("; dropped ")
		b.WriteString(strings.Join(union.dropped, ", "))
	}
	return conflict{mcsv1beta1.ServiceExportReasonPortConflict, b.String()}, true
}

// formatPort prints a port the way a person reads it: "tcp 3306/TCP".
func formatPort(p mcsv1beta1.ServicePort) string {
	s := strconv.Itoa(int(p.Port)) + "/" + string(p.Protocol)
	if p.Name != "" {
		s = p.Name + " " + s
	}
	if p.AppProtocol != nil {
		s += " appProtocol=" + *p.AppProtocol
	}
	return s
}

func formatPorts(ports []mcsv1beta1.ServicePort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = formatPort(p)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
