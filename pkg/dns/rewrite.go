package dns

import (
	"regexp"
	"strconv"
	"strings"
)

// Upstream CoreDNS does not answer the vendor form
// <host>.<svc>.<ns>.svc.clusterset.local: in a multicluster zone its
// parseRequest reads three labels as endpoint.service.namespace with an
// empty cluster, and findMultiClusterServices then requires
// match(cluster, endpoint's cluster id), which "" never satisfies. The
// derived Service already answers the same pod as
// <host>.amcs-<svc>.<ns>.svc.cluster.local, so kubectl-mcs serves the
// vendor form with a rewrite plugin rule: the question is rewritten onto the
// derived name, and the answer's owner name back, because resolvers drop
// answers whose name differs from the question.
//
// The question pattern takes exactly three labels before
// .svc.clusterset.local, none starting with '_'. Every other clusterset name
// keeps its upstream meaning: <svc>.<ns> has two labels, the spec's
// <host>.<clusterid>.<svc>.<ns> and SRV's _<port>._<proto>.<svc>.<ns> have
// four, dns-version has no svc label. The rewrite plugin matches against the
// lower-cased, fully qualified question, hence the anchors and the final dot.
const (
	vendorQuestionPattern = `^([^._][^.]*)\.([^._][^.]*)\.([^._][^.]*)\.svc\.clusterset\.local\.$`
	vendorQuestionTarget  = `{1}.` + derivedPrefix + `{2}.{3}.svc.cluster.local.`
	vendorAnswerPattern   = `^([^.]+)\.` + derivedPrefix + `([^.]+)\.([^.]+)\.svc\.cluster\.local\.$`
	vendorAnswerTarget    = `{1}.{2}.{3}.svc.clusterset.local.`
)

var (
	vendorQuestionRegexp = regexp.MustCompile(vendorQuestionPattern)
	vendorAnswerRegexp   = regexp.MustCompile(vendorAnswerPattern)
)

// vendorRewriteBody is the inside of the `rewrite stop { ... }` block that
// PatchCorefile writes. `stop` because the rewritten name is final: a later
// rule must not move it again. The block form is the rewrite plugin's
// documented syntax for a name rule with an explicit answer rule.
func vendorRewriteBody() []string {
	return []string{
		"name regex " + vendorQuestionPattern + " " + vendorQuestionTarget,
		"answer name " + vendorAnswerPattern + " " + vendorAnswerTarget,
	}
}

// rewriteVendorQuestion applies the rule's question rewrite to fqdn as the
// rewrite plugin's regexNameRule does: FindStringSubmatch, then each {n}
// replaced by group n. ok is false when the rule does not match, i.e. the
// name reaches the kubernetes plugin unchanged.
func rewriteVendorQuestion(fqdn string) (string, bool) {
	return applyRegexRule(vendorQuestionRegexp, vendorQuestionTarget, strings.ToLower(fqdn))
}

// rewriteVendorAnswer maps an answer's owner name back, as the rule's
// `answer name` does.
func rewriteVendorAnswer(owner string) string {
	s, _ := applyRegexRule(vendorAnswerRegexp, vendorAnswerTarget, owner)
	return s
}

func applyRegexRule(pattern *regexp.Regexp, replacement, s string) (string, bool) {
	groups := pattern.FindStringSubmatch(s)
	if len(groups) == 0 {
		return s, false
	}
	out := replacement
	for i, g := range groups {
		out = strings.ReplaceAll(out, "{"+strconv.Itoa(i)+"}", g)
	}
	return out, true
}
