package resolve

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Links of the chain from a pod to its DNS name, in the order resolve
// checks them.
const (
	LinkNoService     = "no Service"
	LinkNoExport      = "no export"
	LinkInvalidExport = "export not valid"
	LinkNamespace     = "namespace missing"
	LinkNotImported   = "not imported"
	LinkStaleImport   = "import out of date"
	LinkNotReady      = "endpoint not ready"
	LinkConflict      = "conflict"
	LinkDNSSetup      = "DNS not set up"
)

// sourceView is what one clusterset member holds in the namespace.
type sourceView struct {
	cluster  *clusterset.Cluster
	services []corev1.Service
	exports  map[string]*mcsv1beta1.ServiceExport
	slices   []discoveryv1.EndpointSlice
	err      error
}

// Clusterset is where a diagnosis looks for the sources of a name: the
// consumer and every member of the clusterset.
type Clusterset struct {
	Loader *clusterset.Loader
	// Contexts lists the members; it is asked only when the diagnosis
	// needs the sources.
	Contexts func() ([]string, error)
	// Warnings gets a line for each member that cannot be read.
	Warnings io.Writer
}

// Diagnose finds the first broken link between the target (as given,
// targetText, and as parsed) and an answer.
func (cs Clusterset) Diagnose(ctx context.Context, consumer *clusterset.Cluster, state dns.State, target dns.Target, targetText string, scope snapshot.Scope, names []Name) (*BrokenLink, error) {
	if len(names) > 0 && !slices.ContainsFunc(names, func(n Name) bool { return n.Served && n.Here == "yes" }) &&
		slices.ContainsFunc(names, func(n Name) bool { return n.Served && n.Here == "no" }) {
		return dnsSetupLink(consumer, names), nil
	}
	if target.IsName() && target.Name.Form == dns.FormDNSVersion {
		return dnsSetupLink(consumer, names), nil
	}
	ns := scope.Namespace
	service, host, derived := "", "", ""
	if target.IsName() {
		host = target.Name.Host
		service = target.Name.Service
		if target.Name.Form.IsDerived() {
			// A cluster.local name names the derived Service: the import
			// that says it is its derived Service, else the exported
			// service whose derived name it is (found below).
			derived, service = service, ""
			for _, si := range state.Imports {
				if reconcile.DerivedServiceOf(&si) == derived && si.Namespace == ns {
					service = si.Name
				}
			}
		}
	}
	views, err := cs.read(ctx, consumer, ns)
	if err != nil {
		return nil, err
	}
	if derived != "" && service == "" {
		var known []string
		for _, v := range views {
			for name := range v.exports {
				known = append(known, name)
			}
			for _, s := range v.services {
				known = append(known, s.Name)
			}
		}
		var ok bool
		if service, ok = reconcile.ServiceOfDerived(derived, known); !ok {
			return &BrokenLink{Link: LinkNoService, Message: fmt.Sprintf("no Service%s in %s has %s as its derived Service", inNamespace(ns), contextList(views), derived),
				Fix: "check the name and -n; `kubectl mcs status -n " + ns + "` lists the imported services with their derived Services"}, nil
		}
	}
	if !target.IsName() {
		for _, v := range views {
			if v.exports[target.Word] != nil || slices.ContainsFunc(v.services, func(s corev1.Service) bool { return s.Name == target.Word }) {
				service = target.Word
			}
		}
		if service == "" {
			host = target.Word
		}
	}
	if service == "" {
		// A hostname: which service's endpoints carry it?
		for _, v := range views {
			for _, s := range v.slices {
				if slices.ContainsFunc(s.Endpoints, func(ep discoveryv1.Endpoint) bool { return ep.Hostname != nil && *ep.Hostname == host }) {
					service, ns = s.Labels[discoveryv1.LabelServiceName], s.Namespace
				}
			}
		}
		if service == "" {
			return &BrokenLink{Link: LinkNoService, Message: fmt.Sprintf("no endpoint with hostname %q%s in %s",
				host, inNamespace(ns), contextList(views)), Fix: "check the name and -n; a pod gets a hostname from its StatefulSet (serviceName) or its spec.hostname and spec.subdomain"}, nil
		}
	}
	var withService, exporting []*sourceView
	for i := range views {
		v := &views[i]
		if slices.ContainsFunc(v.services, func(s corev1.Service) bool { return s.Name == service && s.Namespace == ns }) {
			withService = append(withService, v)
		}
		if v.exports[service] != nil {
			exporting = append(exporting, v)
		}
	}
	key := ns + "/" + service
	if len(withService) == 0 && len(exporting) == 0 {
		return &BrokenLink{Link: LinkNoService, Message: fmt.Sprintf("no Service %s in %s", key, contextList(views)),
			Fix: fmt.Sprintf("create the Service %s in the cluster that runs its pods, or check the name and -n", key)}, nil
	}
	if len(exporting) == 0 {
		return &BrokenLink{Link: LinkNoExport, Cluster: withService[0].cluster.Context,
			Message: fmt.Sprintf("Service %s is not exported by any cluster", key),
			Fix:     fmt.Sprintf("kubectl mcs export %s -n %s --context %s", service, ns, withService[0].cluster.Context)}, nil
	}
	var valid []*sourceView
	var invalid []string
	for _, v := range exporting {
		cond := reconcile.ValidCondition(v.cluster.ID, v.exports[service], findService(v.services, ns, service))
		if cond.Status == metav1.ConditionTrue {
			valid = append(valid, v)
			continue
		}
		invalid = append(invalid, fmt.Sprintf("%s: %s (%s)", v.cluster.Context, cond.Message, cond.Reason))
	}
	if len(valid) == 0 {
		return &BrokenLink{Link: LinkInvalidExport, Cluster: exporting[0].cluster.Context,
			Message: fmt.Sprintf("no valid export of %s: %s", key, strings.Join(invalid, "; ")),
			Fix:     fmt.Sprintf("create a ClusterIP or headless Service %s in an exporting cluster", key)}, nil
	}
	from := make([]string, len(valid))
	for i, v := range valid {
		from[i] = v.cluster.Context
	}
	importCmd := fmt.Sprintf("kubectl mcs import %s -n %s --from %s --context %s", service, ns, strings.Join(from, ","), consumer.Context)
	nsExists, err := namespaceExists(ctx, consumer, ns)
	if err != nil {
		return nil, err
	}
	if !nsExists {
		return &BrokenLink{Link: LinkNamespace, Cluster: consumer.Context,
			Message: fmt.Sprintf("namespace %s does not exist in %s (namespace sameness: the import lives in the same namespace)", ns, consumer.Context),
			Fix:     importCmd + " --create-namespace"}, nil
	}
	if !slices.ContainsFunc(state.Imports, func(si mcsv1beta1.ServiceImport) bool { return si.Name == service && si.Namespace == ns }) {
		return &BrokenLink{Link: LinkNotImported, Cluster: consumer.Context,
			Message: fmt.Sprintf("%s is exported by %s but not imported into %s", key, strings.Join(from, ", "), consumer.Context),
			Fix:     importCmd}, nil
	}
	if host != "" {
		for _, v := range valid {
			ep := findEndpoint(v.slices, ns, service, host)
			if ep == nil {
				continue
			}
			imported := slices.ContainsFunc(names, func(n Name) bool { return n.Cluster == v.cluster.ID })
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				return &BrokenLink{Link: LinkNotReady, Cluster: v.cluster.Context,
					Message: fmt.Sprintf("endpoint %s of %s is not ready in %s; DNS answers only ready endpoints", host, key, v.cluster.Context),
					Fix:     fmt.Sprintf("make the pod ready (kubectl --context %s -n %s describe pod %s), then %s", v.cluster.Context, ns, host, importCmd)}, nil
			}
			if !imported {
				return &BrokenLink{Link: LinkStaleImport, Cluster: consumer.Context,
					Message: fmt.Sprintf("endpoint %s of %s is ready in %s but %s has not imported it yet", host, key, v.cluster.Context, consumer.Context),
					Fix:     importCmd}, nil
			}
		}
		if !slices.ContainsFunc(valid, func(v *sourceView) bool { return findEndpoint(v.slices, ns, service, host) != nil }) {
			if len(names) > 0 {
				return &BrokenLink{Link: LinkStaleImport, Cluster: consumer.Context,
					Message: fmt.Sprintf("%s no longer has an endpoint %s in %s, but %s still holds it", key, host, strings.Join(from, ", "), consumer.Context),
					Fix:     importCmd}, nil
			}
			return &BrokenLink{Link: LinkNoService, Message: fmt.Sprintf("%s has no endpoint with hostname %q in %s", key, host, strings.Join(from, ", ")),
				Fix: "check the hostname; `kubectl mcs resolve " + service + " -n " + ns + "` lists the service's names"}, nil
		}
	}
	for _, v := range valid {
		if c := meta.FindStatusCondition(v.exports[service].Status.Conditions, string(mcsv1beta1.ServiceExportConditionConflict)); c != nil && c.Status == metav1.ConditionTrue {
			return &BrokenLink{Link: LinkConflict, Cluster: v.cluster.Context,
				Message: fmt.Sprintf("the exports of %s conflict (%s): %s", key, c.Reason, c.Message),
				Fix:     "make the exported Services agree (type, ports, session affinity), then " + importCmd}, nil
		}
	}
	if len(names) > 0 && slices.ContainsFunc(names, func(n Name) bool { return n.Here == "no" }) {
		return dnsSetupLink(consumer, names), nil
	}
	return &BrokenLink{Link: LinkStaleImport, Cluster: consumer.Context,
		Message: fmt.Sprintf("%s is imported into %s but answers nothing for %s", key, consumer.Context, targetText),
		Fix:     importCmd}, nil
}

// dnsSetupLink: the names exist, but the consumer's CoreDNS does not
// serve their form.
func dnsSetupLink(consumer *clusterset.Cluster, names []Name) *BrokenLink {
	vendor := slices.ContainsFunc(names, func(n Name) bool { return n.Form == string(dns.FormVendorPod) })
	fix := "kubectl mcs dns --patch --context " + consumer.Context
	if vendor {
		fix = "kubectl mcs dns --patch --vendor-form --context " + consumer.Context
	}
	return &BrokenLink{Link: LinkDNSSetup, Cluster: consumer.Context,
		Message: "the consumer's CoreDNS (ConfigMap kube-system/coredns) is not set up to serve this name form",
		Fix:     fix + " (or use the <host>.amcs-<svc>.<ns>.svc.cluster.local form, which any cluster DNS serves)"}
}

// read reads, from every clusterset member, the consumer
// included (KEP-1645: a cluster's own export is one source of its import),
// the Services, exports and own EndpointSlices of the namespace
// (snapshot.List). A member that cannot be read, or does not serve the MCS
// API, is named with its error and left out of the diagnosis.
func (cs Clusterset) read(ctx context.Context, consumer *clusterset.Cluster, ns string) ([]sourceView, error) {
	contexts, err := cs.Contexts()
	if err != nil {
		return nil, err
	}
	clusters := []*clusterset.Cluster{consumer}
	var views []sourceView
	for _, m := range cs.Loader.ConnectEach(ctx, contexts) {
		switch {
		case m.Err != nil:
			views = append(views, sourceView{cluster: &clusterset.Cluster{Context: m.Context}, err: m.Err})
			fmt.Fprintf(cs.Warnings, "Warning: %v\n", m.Err)
		case !slices.ContainsFunc(clusters, func(x *clusterset.Cluster) bool { return x.Server == m.Cluster.Server }):
			clusters = append(clusters, m.Cluster)
		}
	}
	read := make([]sourceView, len(clusters))
	errs := clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		v := &read[slices.Index(clusters, c)]
		v.cluster = c
		listing, err := snapshot.List(ctx, c, ns)
		if err != nil {
			return err
		}
		v.services, v.slices = listing.Services, listing.Slices
		v.exports = map[string]*mcsv1beta1.ServiceExport{}
		for i := range listing.Exports {
			v.exports[listing.Exports[i].Name] = &listing.Exports[i]
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			read[i] = sourceView{cluster: clusters[i], err: err}
			fmt.Fprintf(cs.Warnings, "Warning: %v\n", err)
		}
	}
	return append(read, views...), nil
}

func namespaceExists(ctx context.Context, c *clusterset.Cluster, ns string) (bool, error) {
	if ns == "" {
		return true, nil
	}
	_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		return true, nil
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, c.Errorf("reading namespace %s: %w", ns, err)
}

func findService(list []corev1.Service, ns, name string) *corev1.Service {
	for i := range list {
		if list[i].Namespace == ns && list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func findEndpoint(list []discoveryv1.EndpointSlice, ns, service, host string) *discoveryv1.Endpoint {
	for _, s := range list {
		if s.Namespace != ns || s.Labels[discoveryv1.LabelServiceName] != service {
			continue
		}
		for i := range s.Endpoints {
			if ep := &s.Endpoints[i]; ep.Hostname != nil && *ep.Hostname == host {
				return ep
			}
		}
	}
	return nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}

func contextList(views []sourceView) string {
	var names []string
	for _, v := range views {
		names = append(names, v.cluster.Context)
	}
	if len(names) == 0 {
		return "no other cluster of the clusterset"
	}
	return "any of " + strings.Join(names, ", ")
}
