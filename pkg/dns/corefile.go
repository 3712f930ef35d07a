package dns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MinCoreDNSVersion is the first CoreDNS release whose kubernetes plugin has
// the multicluster option. An older CoreDNS refuses a Corefile patched by
// PatchCorefile ("unknown property 'multicluster'"), so the caller checks
// the running image before applying the patch.
const MinCoreDNSVersion = "1.12.2"

// Report is what CheckCorefile finds about serving clusterset.local.
type Report struct {
	// ServerBlock is the keys of the server block whose kubernetes plugin
	// should serve clusterset.local, e.g. ".:53"; empty when there is none.
	ServerBlock string
	// KubernetesLine is the line of that kubernetes plugin (1-based).
	KubernetesLine int
	// KubernetesZones are the zones the plugin is authoritative for.
	KubernetesZones []string
	// ZoneListed: clusterset.local is among KubernetesZones, which CoreDNS
	// requires of a multicluster zone.
	ZoneListed bool
	// MulticlusterOption: the kubernetes block holds `multicluster` with
	// clusterset.local among its zones.
	MulticlusterOption bool
	// VendorDirectiveLines are the lines of top-level `multicluster`
	// directives: the seed vendor's own plugin, which upstream CoreDNS does
	// not have and refuses to start with.
	VendorDirectiveLines []int
	// VendorRewrite: kubectl-mcs's rewrite rule for the vendor form
	// <host>.<svc>.<ns>.svc.clusterset.local is present.
	VendorRewrite bool
	// Problems say what stands between this Corefile and upstream CoreDNS
	// serving clusterset.local, each with its fix. Empty when it does.
	Problems []string
	// Warnings are things that may interfere but are not necessarily wrong.
	Warnings []string
}

// ServesClusterSet says whether upstream CoreDNS >= MinCoreDNSVersion
// serves clusterset.local with this Corefile.
func (r Report) ServesClusterSet() bool { return len(r.Problems) == 0 }

// CheckCorefile reports whether corefile makes upstream CoreDNS serve
// clusterset.local: a server block covering the zone, whose kubernetes
// plugin lists clusterset.local among its zones and holds `multicluster
// clusterset.local` in its block, and no top-level `multicluster`
// directive.
func CheckCorefile(corefile string) Report {
	cf, err := parseCorefile(corefile)
	if err != nil {
		return Report{Problems: []string{fmt.Sprintf("the Corefile does not parse (%v): fix it by hand first", err)}}
	}
	in := inspect(cf)
	r := Report{VendorRewrite: in.vendorRewrite}
	for _, d := range in.vendorDirectives {
		r.VendorDirectiveLines = append(r.VendorDirectiveLines, d.name.line)
		r.Problems = append(r.Problems, fmt.Sprintf("line %d: top-level %q is the vendor's own plugin; upstream CoreDNS has none and refuses to start (Unknown directive 'multicluster'); remove it and put `multicluster %s` inside the kubernetes block",
			d.name.line, cf.lineText(d.name), ClusterSetZone))
	}
	for _, d := range in.otherRewrites {
		r.Warnings = append(r.Warnings, fmt.Sprintf("line %d: this rewrite rule also matches clusterset.local names; it may hide the multicluster answers", d.name.line))
	}
	if in.kubernetes == nil {
		r.Problems = append(r.Problems, in.why)
		return r
	}
	r.ServerBlock = joinTexts(in.server.keys)
	r.KubernetesLine = in.kubernetes.name.line
	r.KubernetesZones = in.zones
	r.ZoneListed = slices.Contains(in.zones, ClusterSetZone)
	r.MulticlusterOption = in.optionListed
	if !r.ZoneListed {
		r.Problems = append(r.Problems, fmt.Sprintf("line %d: the kubernetes plugin's zones (%s) do not include %s; CoreDNS serves a multicluster zone only from its own zones: add it, e.g. `kubernetes cluster.local %s in-addr.arpa ip6.arpa`",
			r.KubernetesLine, strings.Join(in.zones, " "), ClusterSetZone, ClusterSetZone))
	}
	if !r.MulticlusterOption {
		r.Problems = append(r.Problems, fmt.Sprintf("line %d: the kubernetes block has no `multicluster %s`; without it every clusterset.local name is NXDOMAIN: add that line inside the block",
			r.KubernetesLine, ClusterSetZone))
	}
	return r
}

// PatchOptions choose what PatchCorefile adds beyond the upstream setup.
type PatchOptions struct {
	// VendorForm adds the rewrite rule that serves the vendor's
	// <host>.<svc>.<ns>.svc.clusterset.local through the derived Service.
	VendorForm bool
}

// Patch is a patched Corefile and the changes that made it, one sentence
// each, in the order they appear in the file.
type Patch struct {
	Corefile string
	Changes  []string
}

// PatchCorefile returns corefile changed so that upstream CoreDNS serves
// clusterset.local, and whether anything changed. It is idempotent: a
// patched Corefile is returned unchanged. See PlanCorefilePatch.
func PatchCorefile(corefile string, opts PatchOptions) (string, bool, error) {
	p, err := PlanCorefilePatch(corefile, opts)
	if err != nil {
		return corefile, false, err
	}
	return p.Corefile, len(p.Changes) > 0, nil
}

// PlanCorefilePatch computes the smallest text edit of corefile that makes
// upstream CoreDNS serve clusterset.local: clusterset.local added to the
// kubernetes plugin's zones (after its last forward zone, so the primary
// zone stays first), `multicluster clusterset.local` added inside its block,
// top-level `multicluster` directives (the vendor's plugin) removed, and
// with opts.VendorForm the rewrite rule for the vendor form added before
// the kubernetes plugin. Everything else keeps its bytes.
func PlanCorefilePatch(corefile string, opts PatchOptions) (Patch, error) {
	cf, err := parseCorefile(corefile)
	if err != nil {
		return Patch{}, fmt.Errorf("the Corefile does not parse (%w): fix it by hand first", err)
	}
	in := inspect(cf)
	if in.kubernetes == nil {
		return Patch{}, fmt.Errorf("cannot patch the Corefile: %s", in.why)
	}
	k := in.kubernetes
	kIndent := cf.indent(k.name)
	unit := cf.indentUnit(in.server, k)
	var edits []edit
	var changes []string
	add := func(e edit, change string) {
		e.seq = len(edits)
		edits = append(edits, e)
		changes = append(changes, change)
	}

	for _, d := range in.vendorDirectives {
		add(cf.removeDirective(d), fmt.Sprintf("line %d: removed %q, the vendor's own plugin, which upstream CoreDNS refuses to start with; its upstream equivalent is `multicluster %s` inside the kubernetes block",
			d.name.line, cf.lineText(d.name), ClusterSetZone))
	}
	if opts.VendorForm && !in.vendorRewrite {
		lines := []string{
			"# kubectl-mcs: serve <host>.<svc>.<ns>.svc.clusterset.local (the vendor form) through the derived Service amcs-<svc>",
			"rewrite stop {",
		}
		for _, l := range vendorRewriteBody() {
			lines = append(lines, unit+l)
		}
		lines = append(lines, "}")
		add(cf.insertLinesBefore(k.name, kIndent, lines), fmt.Sprintf("line %d: added kubectl-mcs's rewrite rule for the vendor form <host>.<svc>.<ns>.svc.clusterset.local before the kubernetes plugin",
			k.name.line))
	}
	if !slices.Contains(in.zones, ClusterSetZone) {
		add(cf.addZone(in), fmt.Sprintf("line %d: added %s to the kubernetes plugin's zones", k.name.line, ClusterSetZone))
	}
	if !in.optionListed {
		option := "multicluster " + ClusterSetZone
		switch {
		case in.option != nil:
			// `multicluster` without this zone (bare, it declares no zone
			// at all): extend it rather than add a second line.
			add(edit{at: in.option.last.end, text: " " + ClusterSetZone}, fmt.Sprintf("line %d: added %s to the kubernetes block's multicluster option", in.option.name.line, ClusterSetZone))
		case k.block != nil:
			add(cf.insertLinesBefore(k.block.close, cf.blockIndent(k, kIndent+unit), []string{option}),
				fmt.Sprintf("line %d: added `%s` to the kubernetes block", k.name.line, option))
		default:
			add(edit{at: k.last.end, text: " {\n" + kIndent + unit + option + "\n" + kIndent + "}"},
				fmt.Sprintf("line %d: added a block with `%s` to the kubernetes plugin", k.name.line, option))
		}
	}
	if len(edits) == 0 {
		return Patch{Corefile: corefile}, nil
	}
	out := applyEdits(corefile, edits)
	// The patch must leave a Corefile that checks clean, or it is not one
	// to write into a cluster.
	if r := CheckCorefile(out); !r.ServesClusterSet() || (opts.VendorForm && !r.VendorRewrite) {
		return Patch{}, fmt.Errorf("the patched Corefile still has problems (%s): patch it by hand", strings.Join(r.Problems, "; "))
	}
	return Patch{Corefile: out, Changes: changes}, nil
}

// inspection is what the checker and the patcher need to know.
type inspection struct {
	server     *serverBlock
	kubernetes *directive
	// why says, when kubernetes is nil, why no plugin was chosen.
	why string
	// zones are the kubernetes plugin's zones, lower case without the
	// final dot; they come from the server block keys when the plugin
	// lists none.
	zones         []string
	explicitZones bool
	// option is the `multicluster` line of the kubernetes block;
	// optionListed says it lists clusterset.local.
	option           *directive
	optionListed     bool
	vendorDirectives []*directive
	vendorRewrite    bool
	otherRewrites    []*directive
}

func inspect(cf *corefile) inspection {
	var in inspection
	var kubernetesBlocks []string
	for _, sb := range cf.blocks {
		in.vendorDirectives = append(in.vendorDirectives, directivesNamed(sb.directives, "multicluster")...)
		ks := directivesNamed(sb.directives, "kubernetes")
		if len(ks) == 0 {
			continue
		}
		kubernetesBlocks = append(kubernetesBlocks, joinTexts(sb.keys))
		if in.kubernetes != nil || !coversClusterSet(sb.keys) {
			continue
		}
		in.server, in.kubernetes = sb, ks[0]
		for _, d := range directivesNamed(sb.directives, "rewrite") {
			if isVendorRewrite(d) {
				in.vendorRewrite = true
			} else if mentions(d, ClusterSetZone) {
				in.otherRewrites = append(in.otherRewrites, d)
			}
		}
	}
	if in.kubernetes == nil {
		if len(kubernetesBlocks) == 0 {
			in.why = "no server block has a kubernetes plugin"
		} else {
			in.why = fmt.Sprintf("the server blocks with a kubernetes plugin (%s) do not receive %s queries: add %s to their keys, or serve it from a '.' block",
				strings.Join(kubernetesBlocks, "; "), ClusterSetZone, ClusterSetZone)
		}
		return in
	}
	k := in.kubernetes
	for _, a := range k.args {
		in.zones = append(in.zones, normalizeZone(a.text))
		in.explicitZones = true
	}
	if !in.explicitZones {
		for _, key := range in.server.keys {
			in.zones = append(in.zones, keyZone(key.text))
		}
	}
	if k.block != nil {
		if opts := directivesNamed(k.block.lines, "multicluster"); len(opts) > 0 {
			in.option = opts[0]
			for _, a := range in.option.args {
				if normalizeZone(a.text) == ClusterSetZone {
					in.optionListed = true
				}
			}
		}
	}
	return in
}

// addZone inserts clusterset.local after the last forward zone of the
// kubernetes plugin: CoreDNS names reverse lookups after the first forward
// zone, which must stay cluster.local. A plugin without zones takes its
// server block's keys; they are written out so the plugin keeps them.
func (cf *corefile) addZone(in inspection) edit {
	k := in.kubernetes
	if !in.explicitZones {
		return edit{at: k.name.end, text: " " + strings.Join(in.zones, " ") + " " + ClusterSetZone}
	}
	after := k.name
	for _, a := range k.args {
		if !isReverseZone(a.text) {
			after = a
		}
	}
	return edit{at: after.end, text: " " + ClusterSetZone}
}

// removeDirective deletes d with its whole line(s) when nothing else shares
// them, else only its tokens.
func (cf *corefile) removeDirective(d *directive) edit {
	if cf.firstOnLine(d.name) && cf.lastOnLine(d.last) {
		return edit{at: cf.lineStart(d.name.start), end: cf.lineEnd(d.last.end)}
	}
	return edit{at: d.name.start, end: d.last.end}
}

// insertLinesBefore puts lines, each indented, on their own lines before t.
func (cf *corefile) insertLinesBefore(t token, indent string, lines []string) edit {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(indent + l + "\n")
	}
	if cf.firstOnLine(t) {
		return edit{at: cf.lineStart(t.start), text: b.String()}
	}
	return edit{at: t.start, text: "\n" + b.String() + cf.indent(t)}
}

// indentUnit is one level of indentation as the file writes it inside the
// kubernetes block (or the server block), four spaces when nothing tells.
func (cf *corefile) indentUnit(sb *serverBlock, k *directive) string {
	outer := cf.indent(k.name)
	if k.block != nil {
		for _, l := range k.block.lines {
			if in := cf.indent(l.name); len(in) > len(outer) && strings.HasPrefix(in, outer) {
				return in[len(outer):]
			}
		}
	}
	if len(sb.keys) > 0 {
		base := cf.indent(sb.keys[0])
		if len(outer) > len(base) && strings.HasPrefix(outer, base) {
			return outer[len(base):]
		}
	}
	return "    "
}

// blockIndent is the indentation of the last line in d's block, fallback
// when the block is empty.
func (cf *corefile) blockIndent(d *directive, fallback string) string {
	for i := len(d.block.lines) - 1; i >= 0; i-- {
		if in := cf.indent(d.block.lines[i].name); in != "" {
			return in
		}
	}
	return fallback
}

// edit replaces src[at:end] with text; end == 0 means a pure insertion.
type edit struct {
	at, end int
	text    string
	seq     int
}

// applyEdits applies non-overlapping edits from the end of the text back,
// so offsets stay valid; insertions at one offset keep the order they were
// made in.
func applyEdits(src string, edits []edit) string {
	slices.SortFunc(edits, func(a, b edit) int {
		if a.at != b.at {
			return b.at - a.at
		}
		return b.seq - a.seq
	})
	for _, e := range edits {
		end := e.end
		if end < e.at {
			end = e.at
		}
		src = src[:e.at] + e.text + src[end:]
	}
	return src
}

func isVendorRewrite(d *directive) bool {
	return slices.ContainsFunc(d.tokens(), func(t token) bool { return t.text == vendorQuestionPattern })
}

func mentions(d *directive, zone string) bool {
	return slices.ContainsFunc(d.tokens(), func(t token) bool { return strings.Contains(strings.ToLower(t.text), zone) })
}

// coversClusterSet says whether a server block with these keys receives
// clusterset.local queries.
func coversClusterSet(keys []token) bool {
	for _, k := range keys {
		z := keyZone(k.text)
		if z == "." || z == ClusterSetZone || strings.HasSuffix(ClusterSetZone, "."+z) {
			return true
		}
	}
	return false
}

// keyZone is the zone of a server block key: "dns://.:53" -> ".",
// "cluster.local:53" -> "cluster.local".
func keyZone(key string) string {
	key = strings.TrimSuffix(key, ",")
	if i := strings.Index(key, "://"); i >= 0 {
		key = key[i+3:]
	}
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		if _, err := strconv.Atoi(key[i+1:]); err == nil {
			key = key[:i]
		}
	}
	return normalizeZone(key)
}

// normalizeZone lower-cases a zone and drops its final dot, except for the
// root zone ".".
func normalizeZone(z string) string {
	z = strings.ToLower(z)
	if z == "." || z == "" {
		return "."
	}
	return strings.TrimSuffix(z, ".")
}

func isReverseZone(z string) bool {
	z = normalizeZone(z)
	return strings.HasSuffix(z, "in-addr.arpa") || strings.HasSuffix(z, "ip6.arpa") || strings.Contains(z, "/")
}

func joinTexts(toks []token) string {
	texts := make([]string, len(toks))
	for i, t := range toks {
		texts[i] = t.text
	}
	return strings.Join(texts, " ")
}
