package dns

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Target is what `kubectl mcs resolve NAME` was given: a full DNS name, or
// a bare word that is a pod hostname or a service name (the caller tries
// both).
type Target struct {
	// Name is set when the argument is a DNS name (IsName).
	Name Name
	// Word is set when the argument is a single label.
	Word string
}

// IsName says whether the target is a full DNS name.
func (t Target) IsName() bool { return t.Word == "" }

// ParseTarget reads a resolve argument. A single label ("mysql-0",
// "mysql") is a bare word; anything with a dot must be a full name in one
// of the Forms, because a partial name would depend on the resolver's
// search path, which kubectl-mcs cannot see.
func ParseTarget(arg string) (Target, error) {
	s := strings.TrimSuffix(strings.TrimSpace(arg), ".")
	if isASCII(s) {
		s = strings.ToLower(s)
	}
	if s != "" && !strings.Contains(s, ".") {
		if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
			return Target{}, fmt.Errorf("%q is neither a pod hostname nor a service name: %s (give a pod hostname such as mysql-0, a service name, or a full DNS name)", arg, strings.Join(errs, "; "))
		}
		return Target{Word: s}, nil
	}
	n, err := Parse(s)
	if err != nil {
		// One hint, the one that fits.
		if strings.Count(s, ".") <= 2 && !strings.HasSuffix(s, ".local") {
			return Target{}, fmt.Errorf("%w (a partial name depends on the resolver's search path: give a pod hostname or a service name alone, e.g. mysql-0, or the full name, e.g. mysql-0.amcs-mysql.provider-ns.svc.cluster.local)", err)
		}
		return Target{}, fmt.Errorf("%w (give a pod hostname such as mysql-0, a service name, or a full DNS name such as mysql-0.<clusterid>.mysql.<namespace>.svc.clusterset.local)", err)
	}
	return Target{Name: n}, nil
}
