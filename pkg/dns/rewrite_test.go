package dns

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The rule is checked the way CoreDNS's rewrite plugin applies it: Go's
// regexp (the plugin's engine) on the lower-cased fully qualified question,
// FindStringSubmatch, {n} replaced by group n.
func TestVendorRewriteQuestion(t *testing.T) {
	tests := []struct {
		question string
		want     string // "" when the rule must not match
	}{
		// The vendor form, onto the derived Service's per-pod name.
		{"mysql-0.mysql.provider-ns.svc.clusterset.local.", "mysql-0.amcs-mysql.provider-ns.svc.cluster.local."},
		{"198-18-0-21.web.shop.svc.clusterset.local.", "198-18-0-21.amcs-web.shop.svc.cluster.local."},
		// The spec's per-pod form has four labels: untouched.
		{"mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local.", ""},
		// SRV names: four labels, and underscores.
		{"_tcp._tcp.mysql.provider-ns.svc.clusterset.local.", ""},
		// Service names: two labels.
		{"mysql.provider-ns.svc.clusterset.local.", ""},
		{"dns-version.clusterset.local.", ""},
		// A three-label name starting with '_' is no hostname.
		{"_tcp.mysql.provider-ns.svc.clusterset.local.", ""},
		// Nothing outside clusterset.local, nothing without the final dot
		// (CoreDNS always matches the fully qualified name).
		{"mysql-0.amcs-mysql.provider-ns.svc.cluster.local.", ""},
		{"mysql-0.mysql.provider-ns.svc.clusterset.local", ""},
		{"mysql-0.mysql.provider-ns.svc.clusterset.local.example.", ""},
	}
	for _, tt := range tests {
		got, ok := rewriteVendorQuestion(tt.question)
		if ok != (tt.want != "") || (ok && got != tt.want) {
			t.Errorf("rewrite %q = %q, %v; want %q", tt.question, got, ok, tt.want)
		}
	}
}

func TestVendorRewriteAnswer(t *testing.T) {
	if got := rewriteVendorAnswer("mysql-0.amcs-mysql.provider-ns.svc.cluster.local."); got != "mysql-0.mysql.provider-ns.svc.clusterset.local." {
		t.Errorf("answer name = %q", got)
	}
	// The SRV record whoami-style plugins add in the additional section
	// keeps its name; only the owner name of the rewritten question maps.
	if got := rewriteVendorAnswer("_udp.mysql-0.amcs-mysql.provider-ns.svc.cluster.local."); got != "_udp.mysql-0.amcs-mysql.provider-ns.svc.cluster.local." {
		t.Errorf("additional name = %q", got)
	}
}

// The rule passes the checks of the rewrite plugin's setup: both patterns
// compile and use no more groups than they capture (isValidRegexPattern),
// and the block flattens to the argument list rewriteParse hands to
// newRule: stop, name, regex, FROM, TO, answer, name, FROM, TO.
func TestVendorRewriteRuleSyntax(t *testing.T) {
	for _, rule := range [][2]string{
		{vendorQuestionPattern, vendorQuestionTarget},
		{vendorAnswerPattern, vendorAnswerTarget},
	} {
		re, err := regexp.Compile(rule[0])
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for i := 0; i <= 100; i++ {
			if strings.Contains(rule[1], "{"+strconv.Itoa(i)+"}") {
				used++
			}
		}
		if used > re.NumSubexp() {
			t.Errorf("%s uses %d groups, %s captures %d", rule[1], used, rule[0], re.NumSubexp())
		}
	}
	cf, err := parseCorefile(".:53 {\n    rewrite stop {\n        " + strings.Join(vendorRewriteBody(), "\n        ") + "\n    }\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	d := cf.blocks[0].directives[0]
	var args []string
	for _, tok := range d.tokens()[1:] {
		args = append(args, tok.text)
	}
	want := []string{"stop", "name", "regex", vendorQuestionPattern, vendorQuestionTarget, "answer", "name", vendorAnswerPattern, vendorAnswerTarget}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("rewrite arguments = %q, want %q", args, want)
	}
}
