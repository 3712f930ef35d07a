// The setup checks, the ones --pre runs: what must hold before anything is
// exported.

package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/crds"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
)

// wantMCSVersion is the MCS API version the CRDs must serve: the one the
// KEP settled on, which every current MCS implementation reads.
const wantMCSVersion = "v1beta1"

func (r *run) checkAPI(ctx context.Context) {
	ms := r.each(anyMember)
	versions := make([]string, len(ms))
	errs := forEach(ctx, ms, func(ctx context.Context, m *member) error {
		v, err := m.cluster.Kube.Discovery().ServerVersion()
		if err != nil {
			return err
		}
		versions[slices.Index(ms, m)] = v.GitVersion
		return nil
	})
	for _, m := range r.members {
		if m.cluster == nil {
			continue // already failed to connect
		}
		if m.sameAs != "" {
			r.add(CategoryAPI, Check{Name: "API reachable", Cluster: m.context, Result: Pass,
				Message: fmt.Sprintf("the same API server as context %s, checked once under that name", m.sameAs)})
			continue
		}
		i := slices.Index(ms, m)
		if errs[i] != nil {
			r.add(CategoryAPI, Check{Name: "API reachable", Cluster: m.context, Result: Fail, Message: message(errs[i]),
				Fix: []string{fmt.Sprintf("start the cluster, or correct the server of context %s; then: kubectl cluster-info --context %s", m.context, m.context)}})
			continue
		}
		m.up = true
		r.add(CategoryAPI, Check{Name: "API reachable", Cluster: m.context, Result: Pass,
			Message: fmt.Sprintf("%s answers, Kubernetes %s", m.cluster.Server, versions[i])})
	}
}

// resolveID is the one place the cluster id is taken from the cluster.
func resolveID(ctx context.Context, c *clusterset.Cluster) error { return c.ResolveID(ctx) }

// idFix says how to give a cluster another id, by where its id came from.
func idFix(c *clusterset.Cluster) string {
	if name, ok := strings.CutPrefix(c.IDSource, "ClusterProperty "); ok {
		return fmt.Sprintf(`kubectl patch clusterproperty.%s %s --type merge -p '{"spec":{"value":"<a unique DNS label>"}}' --context %s`, clusterset.ClusterPropertyGroup, name, c.Context)
	}
	return fmt.Sprintf("create ClusterProperty %s (group %s) with a unique DNS-label value in context %s", clusterset.ClusterIDProperty, clusterset.ClusterPropertyGroup, c.Context)
}

func (r *run) checkIDs(ctx context.Context) {
	ms := r.each(isUp)
	errs := forEach(ctx, ms, func(ctx context.Context, m *member) error { return resolveID(ctx, m.cluster) })
	byID := map[string][]*member{}
	for i, m := range ms {
		if errs[i] == nil {
			byID[m.cluster.ID] = append(byID[m.cluster.ID], m)
		}
	}
	for i, m := range ms {
		if errs[i] != nil {
			r.add(CategoryIDs, Check{Name: "cluster id", Cluster: m.context, Result: Fail, Message: message(errs[i]), Fix: []string{idFix(m.cluster)}})
			continue
		}
		c := m.cluster
		if same := byID[c.ID]; len(same) > 1 {
			var others []string
			for _, o := range same {
				if o != m {
					others = append(others, o.context)
				}
			}
			r.add(CategoryIDs, Check{Name: "cluster id", Cluster: m.context, Result: Fail,
				Message: fmt.Sprintf("id %q (from %s) is also the id of %s: their endpoints would be indistinguishable in DNS", c.ID, c.IDSource, joinComma(others)),
				Fix:     []string{idFix(c)}})
			continue
		}
		m.idOK = true
		r.add(CategoryIDs, Check{Name: "cluster id", Cluster: m.context, Result: Pass,
			Message: fmt.Sprintf("id %q, a unique DNS label, from %s", c.ID, c.IDSource)})
	}
}

func (r *run) checkCRDs(ctx context.Context) {
	ms := r.each(isUp)
	installed := make([][]crds.Installed, len(ms))
	errs := forEach(ctx, ms, func(ctx context.Context, m *member) error {
		got, err := crds.ReadInstalled(ctx, m.cluster.Dynamic)
		installed[slices.Index(ms, m)] = got
		return err
	})
	releases := map[string][]string{}
	for i, m := range ms {
		install := fmt.Sprintf("kubectl mcs crds install --context %s", m.context)
		if errs[i] != nil {
			r.add(CategoryCRDs, Check{Name: "CRDs installed", Cluster: m.context, Result: Fail, Message: message(errs[i])})
			continue
		}
		var missing, old []string
		for _, crd := range installed[i] {
			switch {
			case !crd.Found:
				missing = append(missing, crd.Name)
			case !slices.Contains(crd.Served, wantMCSVersion):
				old = append(old, fmt.Sprintf("%s serves only %s", crd.Name, joinComma(crd.Served)))
			}
		}
		switch {
		case len(missing) > 0:
			r.add(CategoryCRDs, Check{Name: "CRDs installed", Cluster: m.context, Result: Fail,
				Message: "not installed: " + joinComma(missing), Fix: []string{install}})
			continue
		case len(old) > 0:
			r.add(CategoryCRDs, Check{Name: "CRDs installed", Cluster: m.context, Result: Fail,
				Message: fmt.Sprintf("%s, not %s (an older mcs-api release): clusters on %s and this one do not share the API", strings.Join(old, "; "), wantMCSVersion, wantMCSVersion),
				Fix:     []string{install}})
			continue
		}
		// Discovery is what every verb goes by; the CRD objects can be
		// ahead of it or disagree between the two kinds.
		if _, err := m.cluster.MCSVersion(); err != nil {
			r.add(CategoryCRDs, Check{Name: "CRDs installed", Cluster: m.context, Result: Fail, Message: message(err), Fix: []string{install}})
			continue
		}
		var stored []string
		for _, crd := range installed[i] {
			stored = append(stored, crd.Storage)
		}
		slices.Sort(stored)
		release := installed[i][0].Release
		if release == "" || installed[i][1].Release != release {
			release = fmt.Sprintf("%s / %s", orNone(installed[i][0].Release), orNone(installed[i][1].Release))
		}
		releases[release] = append(releases[release], m.context)
		r.add(CategoryCRDs, Check{Name: "CRDs installed", Cluster: m.context, Result: Pass,
			Message: fmt.Sprintf("ServiceExport and ServiceImport serve %s, stored as %s; release %s",
				joinComma(crds.CommonServed(installed[i])), joinComma(slices.Compact(stored)), release)})
	}
	switch len(releases) {
	case 0:
	case 1:
		for release, in := range releases {
			r.add(CategoryCRDs, Check{Name: "same release everywhere", Result: Pass, Message: fmt.Sprintf("%s in %s", release, joinComma(in))})
		}
	default:
		var details, all []string
		for _, release := range slicesSortedKeys(releases) {
			details = append(details, fmt.Sprintf("%s: %s", release, joinComma(releases[release])))
			all = append(all, releases[release]...)
		}
		slices.Sort(all)
		r.add(CategoryCRDs, Check{Name: "same release everywhere", Result: Warn,
			Message: fmt.Sprintf("the clusters hold different releases of the CRDs (label %s)", crds.ReleaseLabel),
			Details: details, Fix: []string{"kubectl mcs crds install --clusters " + strings.Join(all, ",")}})
	}
}

func orNone(s string) string {
	if s == "" {
		return "(unlabelled)"
	}
	return s
}

func (r *run) checkDNS(ctx context.Context) {
	ms := r.each(isUp)
	checks := make([][]Check, len(ms))
	forEach(ctx, ms, func(ctx context.Context, m *member) error {
		checks[slices.Index(ms, m)] = corednsChecks(ctx, m.cluster)
		return nil
	})
	for _, cs := range checks {
		for _, c := range cs {
			r.add(CategoryDNS, c)
		}
	}
}

// corednsChecks are what `kubectl mcs dns` checks: the Corefile of
// ConfigMap kube-system/coredns serves clusterset.local, and the CoreDNS
// Deployment's image is recent enough to run it.
func corednsChecks(ctx context.Context, c *clusterset.Cluster) []Check {
	zone := Check{Name: "serves clusterset.local", Cluster: c.Context}
	// The Corefile and the version in one round trip.
	coredns, err := dns.ReadCoreDNS(ctx, c.Kube)
	switch {
	case errors.Is(err, dns.ErrNoCoreDNS):
		zone.Result = Warn
		zone.Message = fmt.Sprintf("no ConfigMap %s/%s: this cluster's DNS is not CoreDNS set up the usual way, so whether it serves clusterset.local cannot be told", dns.CoreDNSNamespace, dns.CoreDNSConfigMap)
		zone.Fix = []string{"configure its DNS to serve clusterset.local by hand, or use the <host>.amcs-<svc>.<ns>.svc.cluster.local names, which any cluster DNS serves"}
	case err != nil:
		zone.Result, zone.Message = Fail, err.Error()
	default:
		report := coredns.Check
		if report.ServesClusterSet() {
			zone.Result, zone.Message = Pass, fmt.Sprintf("the Corefile's kubernetes plugin (server block %s) serves clusterset.local", report.ServerBlock)
		} else {
			zone.Result, zone.Message = Fail, "the Corefile does not serve clusterset.local"
			zone.Details = report.Problems
			zone.Fix = []string{"kubectl mcs dns --patch --context " + c.Context}
		}
		zone.Details = append(zone.Details, report.Warnings...)
	}
	ver := Check{Name: "CoreDNS >= " + dns.MinCoreDNSVersion, Cluster: c.Context}
	var v *version.Version
	if coredns != nil {
		v, err = coredns.Version, coredns.VersionErr
	} else {
		v, err = dns.CoreDNSVersion(ctx, c.Kube)
	}
	switch {
	case err != nil:
		ver.Result, ver.Message = Warn, err.Error()
		ver.Fix = []string{fmt.Sprintf("make sure the cluster's CoreDNS is >= %s (the first with the kubernetes plugin's multicluster option)", dns.MinCoreDNSVersion)}
	case v.LessThan(version.MustParseGeneric(dns.MinCoreDNSVersion)):
		ver.Result = Fail
		ver.Message = fmt.Sprintf("CoreDNS %s lacks the kubernetes plugin's multicluster option (it needs >= %s)", v, dns.MinCoreDNSVersion)
		ver.Fix = []string{fmt.Sprintf("upgrade the image of Deployment %s/%s to CoreDNS %s or later", dns.CoreDNSNamespace, dns.CoreDNSDeployment, dns.MinCoreDNSVersion)}
	default:
		ver.Result, ver.Message = Pass, fmt.Sprintf("CoreDNS %s (image of Deployment %s/%s)", v, dns.CoreDNSNamespace, dns.CoreDNSDeployment)
	}
	return []Check{zone, ver}
}

// checkPermissions makes the engine's permission review (the one a sync
// makes before its first write) for every write a sync of the scope may
// make: in each namespace it covers, every cluster imports (ServiceImports
// with their status, derived Services, EndpointSlices: created, patched,
// deleted), and a cluster exporting there writes its exports' status.
func (r *run) checkPermissions(ctx context.Context) {
	ms := r.each(hasID)
	exported := map[string][]string{} // namespace -> cluster ids exporting there
	for _, m := range r.each(wasRead) {
		for _, e := range m.source.Exports {
			if !slices.Contains(exported[e.Namespace], m.cluster.ID) {
				exported[e.Namespace] = append(exported[e.Namespace], m.cluster.ID)
			}
		}
	}
	namespaces := make([][]string, len(ms))
	errs := forEach(ctx, ms, func(ctx context.Context, m *member) error {
		c := m.cluster
		var plan reconcile.Plan
		nss := r.permissionNamespaces(c, exported)
		namespaces[slices.Index(ms, m)] = nss
		for _, ns := range nss {
			for _, kind := range []string{reconcile.KindServiceImport, reconcile.KindService, reconcile.KindEndpointSlice} {
				plan.Changes = append(plan.Changes, reconcile.Change{Cluster: c.ID, Action: reconcile.ActionReplace, Kind: kind, Namespace: ns})
			}
			plan.Changes = append(plan.Changes, reconcile.Change{Cluster: c.ID, Action: reconcile.ActionUpdate, Kind: reconcile.KindServiceImportStatus, Namespace: ns})
			if slices.Contains(exported[ns], c.ID) {
				plan.Changes = append(plan.Changes, reconcile.Change{Cluster: c.ID, Action: reconcile.ActionUpdate, Kind: reconcile.KindServiceExportStatus, Namespace: ns})
			}
		}
		x := &apply.Executor{Clusters: map[string]*clusterset.Cluster{c.ID: c}, DryRun: cmdutil.DryRunNone}
		return x.Preflight(ctx, plan)
	})
	for i, m := range ms {
		where := "namespace " + joinComma(namespaces[i])
		if len(namespaces[i]) > 1 {
			where = "namespaces " + joinComma(namespaces[i])
		}
		if errs[i] != nil {
			r.add(CategoryRBAC, Check{Name: "may sync", Cluster: m.context, Result: Fail, Message: message(errs[i]),
				Fix: []string{fmt.Sprintf("bind the ClusterRoles of deploy/rbac/ (kubectl-mcs-view, -consumer, and -provider where it exports) to the user of context %s", m.context)}})
			continue
		}
		r.add(CategoryRBAC, Check{Name: "may sync", Cluster: m.context, Result: Pass,
			Message: fmt.Sprintf("the user of this context may write what a sync writes in %s", where)})
	}
}

// permissionNamespaces are the namespaces a sync of the scope writes in:
// the one asked for, else every exported one, else (before the first
// export) the context's own.
func (r *run) permissionNamespaces(c *clusterset.Cluster, exported map[string][]string) []string {
	if r.opts.Scope.Namespace != "" {
		return []string{r.opts.Scope.Namespace}
	}
	if len(exported) > 0 {
		return slicesSortedKeys(exported)
	}
	if c.Namespace != "" {
		return []string{c.Namespace}
	}
	return []string{metav1.NamespaceDefault}
}

func slicesSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
