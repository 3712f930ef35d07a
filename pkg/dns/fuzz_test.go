package dns

import (
	"strings"
	"testing"
)

// FuzzParse checks the properties every caller relies on: Parse never
// panics; a parsed name prints as a canonical FQDN that parses back to the
// same Name, whatever the input's case or trailing dot; every label of it
// obeys the DNS limits; and the vendor rewrite rule matches exactly the
// vendor form, mapping it onto the derived per-pod name and back.
// The seed corpus is testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, input string) {
		_, _ = ParseTarget(input)
		n, err := Parse(input)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error", input)
			}
			return
		}
		fqdn := n.String()
		checkLimits(t, fqdn)
		if n.Form.Pattern() == "" {
			t.Fatalf("Parse(%q): unknown form %q", input, n.Form)
		}
		for _, variant := range []string{fqdn, strings.TrimSuffix(fqdn, "."), strings.ToUpper(input)} {
			again, err := Parse(variant)
			if err != nil {
				t.Fatalf("Parse(%q) = %+v, but Parse(%q): %v", input, n, variant, err)
			}
			if again != n {
				t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v", input, n, variant, again)
			}
		}
		rewritten, matched := rewriteVendorQuestion(fqdn)
		if matched != (n.Form == FormVendorPod) {
			t.Fatalf("the vendor rewrite rule matches %q: %v, its form is %s", fqdn, matched, n.Form)
		}
		if !matched {
			return
		}
		if back := rewriteVendorAnswer(rewritten); back != fqdn {
			t.Fatalf("%q rewrites to %q, which maps back to %q", fqdn, rewritten, back)
		}
		derived, err := Parse(rewritten)
		if err != nil {
			// Only the limits can break: "amcs-" lengthens the service
			// label and the name by 5, "cluster" is 3 shorter than
			// "clusterset".
			if !strings.Contains(err.Error(), "holds at most") {
				t.Fatalf("%q rewrites to %q: %v", fqdn, rewritten, err)
			}
			return
		}
		want := Name{Form: FormDerivedPod, Host: n.Host, Service: derivedPrefix + n.Service, Namespace: n.Namespace}
		if derived != want {
			t.Fatalf("%q rewrites to %+v, want %+v", fqdn, derived, want)
		}
	})
}

func checkLimits(t *testing.T, fqdn string) {
	t.Helper()
	if !strings.HasSuffix(fqdn, ".") {
		t.Fatalf("%q has no trailing dot", fqdn)
	}
	name := strings.TrimSuffix(fqdn, ".")
	if len(name) > MaxNameLength {
		t.Fatalf("%q is %d characters", fqdn, len(name))
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) == 0 || len(l) > MaxLabelLength {
			t.Fatalf("%q has label %q of %d characters", fqdn, l, len(l))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' && i == 0) {
				t.Fatalf("%q has label %q with %q", fqdn, l, c)
			}
		}
	}
}
