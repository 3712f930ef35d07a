package reconcile

import (
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

func TestDerivedServiceName(t *testing.T) {
	long63 := strings.Repeat("a", 30) + "-" + strings.Repeat("b", 32)
	tests := []struct {
		service, want string
	}{
		{"mysql", "amcs-mysql"},
		{strings.Repeat("x", 58), "amcs-" + strings.Repeat("x", 58)}, // exactly 63: kept whole
		{long63, DerivedServiceName(long63)},
	}
	for _, tt := range tests {
		got := DerivedServiceName(tt.service)
		if got != tt.want {
			t.Errorf("DerivedServiceName(%q) = %q, want %q", tt.service, got, tt.want)
		}
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("DerivedServiceName(%q) = %q is not a DNS-1035 label: %v", tt.service, got, errs)
		}
	}

	got := DerivedServiceName(long63)
	if len(got) != 63 || !strings.HasPrefix(got, "amcs-aaaa") {
		t.Errorf("DerivedServiceName(63 chars) = %q (%d chars), want 63 chars starting amcs-", got, len(got))
	}
	// Two long names sharing their first 54 characters stay distinct.
	other := long63[:len(long63)-1] + "c"
	if DerivedServiceName(other) == got {
		t.Errorf("DerivedServiceName gives %q for both %q and %q", got, long63, other)
	}
	// A cut that lands on a '-' must not leave "--" or a trailing '-'.
	dashy := strings.Repeat("a", 53) + "-" + strings.Repeat("b", 9)
	if d := DerivedServiceName(dashy); strings.Contains(d, "--") || len(validation.IsDNS1035Label(d)) > 0 {
		t.Errorf("DerivedServiceName(%q) = %q", dashy, d)
	}
}

func TestEndpointSliceName(t *testing.T) {
	if got := EndpointSliceName("amcs-mysql", "cluster1", discoveryv1.AddressTypeIPv4, 0); got != "amcs-mysql.cluster1-ipv4-0" {
		t.Errorf("EndpointSliceName = %q", got)
	}
	longest := EndpointSliceName(DerivedServiceName(strings.Repeat("s", 63)), strings.Repeat("c", 63), discoveryv1.AddressTypeIPv6, 12345)
	if errs := validation.IsDNS1123Subdomain(longest); len(errs) > 0 {
		t.Errorf("EndpointSliceName = %q is not a DNS subdomain: %v", longest, errs)
	}
	// The dot keeps (service, cluster) pairs apart even when dashes line up.
	a := EndpointSliceName("amcs-a", "b-c", discoveryv1.AddressTypeIPv4, 0)
	b := EndpointSliceName("amcs-a-b", "c", discoveryv1.AddressTypeIPv4, 0)
	if a == b {
		t.Errorf("EndpointSliceName collides: %q", a)
	}
}

// An import made by another MCS controller names its derived Service in the
// annotation; readers follow it instead of guessing kubectl-mcs's name.
func TestDerivedServiceOf(t *testing.T) {
	own := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "mysql"}}
	if got := DerivedServiceOf(own); got != "amcs-mysql" {
		t.Errorf("no annotation: %q, want amcs-mysql", got)
	}
	other := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "mysql",
		Annotations: map[string]string{DerivedServiceAnnotation: "derived-mysql-x7k2"}}}
	if got := DerivedServiceOf(other); got != "derived-mysql-x7k2" {
		t.Errorf("annotated: %q, want derived-mysql-x7k2", got)
	}
}

// TestServiceOfDerived maps derived names back by lookup: a Service itself
// named amcs-x derives to amcs-amcs-x, and a long name's derived Service is
// cut and hashed, so no prefix trimming could find it.
func TestServiceOfDerived(t *testing.T) {
	long := strings.Repeat("a", 62) + "-x"
	candidates := []string{"web", "amcs-x", "x", long}
	for _, tc := range []struct {
		derived, want string
	}{
		{"amcs-web", "web"},
		{"amcs-x", "x"},
		{"amcs-amcs-x", "amcs-x"},
		{DerivedServiceName(long), long},
		{"amcs-" + long[:58], ""},
		{"amcs-missing", ""},
	} {
		got, ok := ServiceOfDerived(tc.derived, candidates)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ServiceOfDerived(%q) = %q, %t; want %q", tc.derived, got, ok, tc.want)
		}
	}
	// Why a lookup: trimming the prefix gives neither service back.
	if d := DerivedServiceName(long); strings.TrimPrefix(d, "amcs-") == long {
		t.Errorf("derived name %q of a %d-character service is not cut", d, len(long))
	}
}
