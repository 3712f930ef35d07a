package dns

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The zones kubectl-mcs names live in. The cluster domain is assumed to be
// the Kubernetes default; a cluster configured with another domain serves
// the derived forms under that domain instead.
const (
	// ClusterSetZone is the MCS zone (KEP-1645).
	ClusterSetZone = "clusterset.local"
	// ClusterZone is the ordinary cluster DNS zone, which serves imports
	// through their derived Service.
	ClusterZone = "cluster.local"
)

// DNS limits (RFC 1035 section 2.3.4, in presentation form without the
// trailing dot).
const (
	MaxLabelLength = 63
	MaxNameLength  = 253
)

// derivedPrefix is how a derived Service name starts (see
// reconcile.DerivedServiceName); it is what tells a derived cluster.local
// name from an ordinary Service's.
const derivedPrefix = "amcs-"

// Form says which DNS name shape a Name has. The value is a short stable
// identifier, fit for -o json output.
type Form string

const (
	// FormDerivedPod is <host>.amcs-<svc>.<ns>.svc.cluster.local: one pod
	// through the derived Service, the seed's first form. Any cluster DNS
	// serves it.
	FormDerivedPod Form = "derived-pod"
	// FormDerivedService is amcs-<svc>.<ns>.svc.cluster.local: the derived
	// Service itself.
	FormDerivedService Form = "derived-service"
	// FormDerivedSRV is _<port>._<proto>.amcs-<svc>.<ns>.svc.cluster.local.
	FormDerivedSRV Form = "derived-srv"
	// FormClusterSetPod is <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local:
	// the MCS DNS specification's per-pod name, served by upstream CoreDNS.
	FormClusterSetPod Form = "clusterset-pod"
	// FormVendorPod is <host>.<svc>.<ns>.svc.clusterset.local: the seed
	// vendor's per-pod name without cluster id. Upstream CoreDNS serves it
	// only through kubectl-mcs's rewrite rule. The spec-forbidden
	// <clusterid>.<svc>.<ns>.svc.clusterset.local has the same shape; Answer
	// tells them apart.
	FormVendorPod Form = "vendor-pod"
	// FormClusterSetService is <svc>.<ns>.svc.clusterset.local.
	FormClusterSetService Form = "clusterset-service"
	// FormClusterSetSRV is _<port>._<proto>.<svc>.<ns>.svc.clusterset.local.
	FormClusterSetSRV Form = "clusterset-srv"
	// FormDNSVersion is dns-version.clusterset.local (TXT).
	FormDNSVersion Form = "dns-version"
)

// Pattern is the form's shape with placeholders, for help texts.
func (f Form) Pattern() string {
	switch f {
	case FormDerivedPod:
		return "<host>.amcs-<svc>.<ns>.svc.cluster.local"
	case FormDerivedService:
		return "amcs-<svc>.<ns>.svc.cluster.local"
	case FormDerivedSRV:
		return "_<port>._<proto>.amcs-<svc>.<ns>.svc.cluster.local"
	case FormClusterSetPod:
		return "<host>.<clusterid>.<svc>.<ns>.svc.clusterset.local"
	case FormVendorPod:
		return "<host>.<svc>.<ns>.svc.clusterset.local"
	case FormClusterSetService:
		return "<svc>.<ns>.svc.clusterset.local"
	case FormClusterSetSRV:
		return "_<port>._<proto>.<svc>.<ns>.svc.clusterset.local"
	case FormDNSVersion:
		return "dns-version.clusterset.local"
	}
	return ""
}

// IsPerPod says whether the form names one endpoint rather than a service.
func (f Form) IsPerPod() bool {
	return f == FormDerivedPod || f == FormClusterSetPod || f == FormVendorPod
}

// IsDerived says whether the form names a derived Service (amcs-<svc>, in
// cluster.local) rather than the exported service.
func (f Form) IsDerived() bool {
	return f == FormDerivedPod || f == FormDerivedService || f == FormDerivedSRV
}

// IsSRV says whether the form names SRV records.
func (f Form) IsSRV() bool { return f == FormDerivedSRV || f == FormClusterSetSRV }

// ServedBy names the DNS setup a name needs before anything answers it.
type ServedBy string

const (
	// ServedByClusterDNS: every Kubernetes cluster DNS, no configuration.
	ServedByClusterDNS ServedBy = "cluster DNS (any)"
	// ServedByMulticluster: the kubernetes plugin's multicluster option,
	// which CoreDNS has since 1.12.2.
	ServedByMulticluster ServedBy = "CoreDNS >= 1.12.2 with `multicluster clusterset.local`"
	// ServedByRewrite: VendorRewriteRule in the Corefile (PatchOptions.VendorForm).
	ServedByRewrite ServedBy = "CoreDNS with kubectl-mcs's rewrite rule for the vendor form"
)

// ServedBy is the DNS setup that answers names of this form.
func (f Form) ServedBy() ServedBy {
	switch f {
	case FormDerivedPod, FormDerivedService, FormDerivedSRV:
		return ServedByClusterDNS
	case FormVendorPod:
		return ServedByRewrite
	}
	return ServedByMulticluster
}

// Name is a parsed kubectl-mcs DNS name. All labels are lower case; fields a
// form does not use are empty.
type Name struct {
	Form Form
	// Host is the endpoint label of the per-pod forms: the pod's hostname,
	// or its dashed IP when the endpoint has none (CoreDNS's rule).
	Host string
	// ClusterID is the source cluster label of FormClusterSetPod.
	ClusterID string
	// Service is the service label as written: the exported service name
	// in clusterset.local, the derived Service name (amcs-...) in
	// cluster.local.
	Service   string
	Namespace string
	// Port and Protocol are the SRV labels without their underscore
	// ("mysql", "tcp").
	Port     string
	Protocol string
}

// String is the canonical fully qualified name, with its trailing dot.
func (n Name) String() string {
	return strings.Join(n.labels(), ".") + "."
}

func (n Name) labels() []string {
	var l []string
	switch n.Form {
	case FormDNSVersion:
		return []string{"dns-version", "clusterset", "local"}
	case FormDerivedSRV, FormClusterSetSRV:
		l = []string{"_" + n.Port, "_" + n.Protocol}
	case FormDerivedPod, FormVendorPod:
		l = []string{n.Host}
	case FormClusterSetPod:
		l = []string{n.Host, n.ClusterID}
	}
	l = append(l, n.Service, n.Namespace, "svc")
	if n.zone() == ClusterZone {
		return append(l, "cluster", "local")
	}
	return append(l, "clusterset", "local")
}

func (n Name) zone() string {
	switch n.Form {
	case FormDerivedPod, FormDerivedService, FormDerivedSRV:
		return ClusterZone
	}
	return ClusterSetZone
}

// Parse reads a DNS name in one of the Forms. The trailing dot is optional
// and case is ignored, as in DNS. Errors say which label is wrong and what
// the name should look like.
func Parse(name string) (Name, error) {
	labels, err := splitLabels(name)
	if err != nil {
		return Name{}, err
	}
	switch {
	case hasSuffix(labels, "dns-version", "clusterset", "local") && len(labels) == 3:
		return Name{Form: FormDNSVersion}, nil
	case hasSuffix(labels, "svc", "clusterset", "local"):
		return parseClusterSet(name, labels[:len(labels)-3])
	case hasSuffix(labels, "svc", "cluster", "local"):
		return parseDerived(name, labels[:len(labels)-3])
	case hasSuffix(labels, "clusterset", "local"):
		return Name{}, nameError(name, "clusterset.local holds only <svc>.<ns>.svc.clusterset.local names (and dns-version.clusterset.local); pod and other subtrees are not defined by the MCS DNS specification")
	}
	return Name{}, nameError(name, "unknown zone: kubectl-mcs names end in .svc.clusterset.local (e.g. %s) or, through the derived Service, .svc.cluster.local (e.g. %s)",
		FormClusterSetService.Pattern(), FormDerivedPod.Pattern())
}

// parseClusterSet reads the labels left of svc.clusterset.local, the way
// CoreDNS's parseRequest does in a multicluster zone: two labels are a
// service, three an endpoint, four either _port._proto (an underscore on
// either label) or endpoint.cluster.
func parseClusterSet(name string, l []string) (Name, error) {
	switch len(l) {
	case 0, 1:
		return Name{}, nameError(name, "the service is missing: the shortest clusterset name is %s", FormClusterSetService.Pattern())
	case 2:
		n := Name{Form: FormClusterSetService, Service: l[0], Namespace: l[1]}
		return n, n.validate(name)
	case 3:
		n := Name{Form: FormVendorPod, Host: l[0], Service: l[1], Namespace: l[2]}
		return n, n.validate(name)
	case 4:
		if isUnderscored(l[0]) || isUnderscored(l[1]) {
			return parseSRV(name, FormClusterSetSRV, l)
		}
		n := Name{Form: FormClusterSetPod, Host: l[0], ClusterID: l[1], Service: l[2], Namespace: l[3]}
		return n, n.validate(name)
	}
	return Name{}, nameError(name, "too many labels before .svc.clusterset.local: the longest names are %s and %s",
		FormClusterSetPod.Pattern(), FormClusterSetSRV.Pattern())
}

// parseDerived reads the labels left of svc.cluster.local. Only derived
// Services (amcs-<svc>) are kubectl-mcs names there; the cluster zone has
// no cluster-id form (CoreDNS reads two extra labels as _port._proto).
func parseDerived(name string, l []string) (Name, error) {
	var n Name
	switch len(l) {
	case 0, 1:
		return Name{}, nameError(name, "the service is missing: the shortest derived name is %s", FormDerivedService.Pattern())
	case 2:
		n = Name{Form: FormDerivedService, Service: l[0], Namespace: l[1]}
	case 3:
		n = Name{Form: FormDerivedPod, Host: l[0], Service: l[1], Namespace: l[2]}
	case 4:
		if !isUnderscored(l[0]) && !isUnderscored(l[1]) {
			return Name{}, nameError(name, "cluster.local has no cluster-id form: use %s (every cluster's endpoint with that hostname) or %s",
				FormDerivedPod.Pattern(), FormClusterSetPod.Pattern())
		}
		var err error
		if n, err = parseSRV(name, FormDerivedSRV, l); err != nil {
			return Name{}, err
		}
	default:
		return Name{}, nameError(name, "too many labels before .svc.cluster.local: the longest derived names are %s and %s",
			FormDerivedPod.Pattern(), FormDerivedSRV.Pattern())
	}
	if !strings.HasPrefix(n.Service, derivedPrefix) {
		return Name{}, nameError(name, "%q is not a derived Service: an imported service is reached in cluster.local through amcs-<svc> (%s), or as %s",
			n.Service, FormDerivedPod.Pattern(), FormClusterSetService.Pattern())
	}
	return n, n.validate(name)
}

func parseSRV(name string, form Form, l []string) (Name, error) {
	if !isUnderscored(l[0]) || !isUnderscored(l[1]) {
		return Name{}, nameError(name, "an SRV name starts with two underscored labels, _<port>._<proto> (e.g. _mysql._tcp), got %q and %q", l[0], l[1])
	}
	n := Name{Form: form, Port: l[0][1:], Protocol: l[1][1:], Service: l[2], Namespace: l[3]}
	return n, n.validate(name)
}

// validate checks each label against what Kubernetes allows in its place,
// so that a typo is reported as such rather than as "no such name".
func (n Name) validate(name string) error {
	check := func(what, value string, errs []string) error {
		if len(errs) == 0 {
			return nil
		}
		return nameError(name, "%s %q: %s", what, value, strings.Join(errs, "; "))
	}
	if n.Host != "" {
		if err := check("host", n.Host, validation.IsDNS1123Label(n.Host)); err != nil {
			return err
		}
	}
	if n.ClusterID != "" {
		if err := check("cluster id", n.ClusterID, validation.IsDNS1123Label(n.ClusterID)); err != nil {
			return err
		}
	}
	if n.Form.IsSRV() {
		if err := check("port name", n.Port, validation.IsValidPortName(n.Port)); err != nil {
			return err
		}
		switch n.Protocol {
		case "tcp", "udp", "sctp":
		default:
			return nameError(name, "protocol %q: Kubernetes ports use _tcp, _udp or _sctp", n.Protocol)
		}
	}
	if err := check("service", n.Service, validation.IsDNS1035Label(n.Service)); err != nil {
		return err
	}
	return check("namespace", n.Namespace, validation.IsDNS1123Label(n.Namespace))
}

// splitLabels lower-cases name, drops one trailing dot and checks the limits
// every DNS name obeys, before any form is considered.
func splitLabels(name string) ([]string, error) {
	// Checked before lower-casing: strings.ToLower maps some non-ASCII
	// letters (the Kelvin sign) onto ASCII ones.
	if !isASCII(name) {
		return nil, nameError(name, "it has a non-ASCII character; DNS names are ASCII (give an internationalized name in its xn-- form)")
	}
	s := strings.ToLower(strings.TrimSuffix(name, "."))
	if s == "" {
		return nil, nameError(name, "the name is empty")
	}
	if len(s) > MaxNameLength {
		return nil, nameError(name, "the name is %d characters; a DNS name holds at most %d", len(s), MaxNameLength)
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if l == "" {
			return nil, nameError(name, "label %d is empty (a leading dot, or two dots in a row)", i+1)
		}
		if len(l) > MaxLabelLength {
			return nil, nameError(name, "label %q is %d characters; a DNS label holds at most %d", l, len(l), MaxLabelLength)
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			case c == '_' && j == 0:
				// Only SRV's _port and _proto labels; the form parsers
				// reject it anywhere else.
			default:
				return nil, nameError(name, "label %q has %q: DNS labels hold letters, digits and '-' (and a leading '_' in SRV names)", l, string(rune(c)))
			}
		}
		if isUnderscored(l) && len(l) == 1 {
			return nil, nameError(name, "label %q has no name after its underscore", l)
		}
	}
	return labels, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasSuffix(labels []string, suffix ...string) bool {
	if len(labels) < len(suffix) {
		return false
	}
	tail := labels[len(labels)-len(suffix):]
	for i := range suffix {
		if tail[i] != suffix[i] {
			return false
		}
	}
	return true
}

func isUnderscored(label string) bool { return strings.HasPrefix(label, "_") }

func nameError(name, format string, args ...any) error {
	return fmt.Errorf("DNS name %q: %s", name, fmt.Sprintf(format, args...))
}

// ServiceNames are the names of an imported service as `kubectl mcs status`
// lists them, without the trailing dot: the clusterset name, then for a
// headless service the per-pod names (with <pod> and <clusterid> as
// placeholders), else the derived Service's name. derived is the name of
// the derived Service, which another MCS controller may have chosen.
func ServiceNames(service, namespace, derived string, headless bool) []string {
	names := []Name{{Form: FormClusterSetService, Service: service, Namespace: namespace}}
	if headless {
		names = append(names,
			Name{Form: FormDerivedPod, Host: "<pod>", Service: derived, Namespace: namespace},
			Name{Form: FormClusterSetPod, Host: "<pod>", ClusterID: "<clusterid>", Service: service, Namespace: namespace})
	} else {
		names = append(names, Name{Form: FormDerivedService, Service: derived, Namespace: namespace})
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n.String(), ".")
	}
	return out
}
