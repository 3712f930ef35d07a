package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// FieldManager is the server-side apply field manager of kubectl-mcs and the
// value of every managed-by label it writes. One constant, so that "who owns
// this object" always has the same answer.
const FieldManager = "kubectl-mcs"

// ManagedByLabel marks the ServiceImports and derived Services kubectl-mcs
// manages (value FieldManager). Mirrored EndpointSlices use
// discoveryv1.LabelManagedBy instead, the label kube-proxy and the
// EndpointSlice controller already understand.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// DerivedServiceAnnotation names, on a ServiceImport, the Service that
// carries its endpoints in the cluster: the annotation the mcs-api reference
// controllers and other MCS implementations set, so that readers (status,
// resolve) also find the derived Service of an import another controller
// made.
const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"

// DerivedServiceOf is the Service that carries an import's endpoints: the
// one its DerivedServiceAnnotation names (also set by other MCS
// controllers), else the name kubectl-mcs derives.
func DerivedServiceOf(si *mcsv1beta1.ServiceImport) string {
	if d := si.Annotations[DerivedServiceAnnotation]; d != "" {
		return d
	}
	return DerivedServiceName(si.Name)
}

// derivedServicePrefix is the vendor-compatible prefix of derived Services
// (the seed documents <pod>.amcs-<svc>.<ns>.svc.cluster.local).
const derivedServicePrefix = "amcs-"

// nameHashLength is the number of hex characters of the hash suffix used
// when a name has to be shortened.
const nameHashLength = 8

// DerivedServiceName is the name of the Service that carries an import's
// endpoints in the consumer: "amcs-<service>". A Service name is a DNS-1035
// label (at most 63 characters), so when the prefix pushes it over, the name
// is cut and ends with "-<8 hex of sha256(service)>": still a valid label,
// the same on every run and distinct for services sharing a long prefix.
func DerivedServiceName(service string) string {
	name := derivedServicePrefix + service
	if len(name) <= validation.DNS1035LabelMaxLength {
		return name
	}
	suffix := shortHash(service)
	keep := validation.DNS1035LabelMaxLength - 1 - len(suffix)
	// A label may not end with '-'; trimming here keeps "x--hash" out too.
	return strings.TrimRight(name[:keep], "-") + "-" + suffix
}

// EndpointSliceName is the name of the index-th mirrored slice of one source
// cluster and address type: "<derived>.<cluster>-<ipv4|ipv6|fqdn>-<index>",
// e.g. "amcs-mysql.cluster1-ipv4-0". The dot cannot occur in a derived name
// nor in a cluster id (both DNS labels), so two (service, cluster) pairs can
// never produce the same name, and the result (at most 63+1+63+1+4+1+digits
// characters) is a DNS subdomain. Reruns produce the same names, so slices
// are updated in place. clusterID must be a DNS-1123 label (KEP-2149).
func EndpointSliceName(derived, clusterID string, addressType discoveryv1.AddressType, index int) string {
	var b strings.Builder
	b.Grow(len(derived) + len(clusterID) + 12)
	b.WriteString(derived)
	b.WriteByte('.')
	b.WriteString(clusterID)
	b.WriteByte('-')
	b.WriteString(strings.ToLower(string(addressType)))
	b.WriteByte('-')
	b.WriteString(strconv.Itoa(index))
	return b.String()
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:nameHashLength/2])
}

// ServiceOfDerived maps a derived Service name back to the exported
// service it carries, among candidates (the services a reader knows of):
// DerivedServiceName in reverse, by lookup, since a long name is cut and
// hashed and "amcs-x" may itself be an exported service's name. ok is false
// when no candidate derives to derived.
func ServiceOfDerived(derived string, candidates []string) (service string, ok bool) {
	for _, c := range candidates {
		if DerivedServiceName(c) == derived {
			return c, true
		}
	}
	return "", false
}
