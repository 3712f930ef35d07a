package cmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// ResolveOptions answers "which DNS names reach this pod or service, and
// what do they answer", from the consumer's imported state.
type ResolveOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Target        string
	Clusters      string
	AllNamespaces bool
	DNSServer     string

	output        *reportOutput
	clustersGiven bool
	getenv        func(string) string
}

// NewCmdResolve builds `kubectl mcs resolve`.
func NewCmdResolve(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ResolveOptions{Loader: loader, IOStreams: streams, getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "resolve NAME [-n NAMESPACE | -A] [--context CONSUMER] [--dns-server HOST:PORT]",
		Short: "Show every DNS name that reaches a pod or service, and its answer",
		Long: templates.LongDesc(`
			Answer, from what the consumer cluster (the current context) has imported, every DNS
			name that reaches a pod hostname (mysql-0), a service (mysql), or a full DNS name:

			  <host>.amcs-<svc>.<ns>.svc.cluster.local              the derived Service (any cluster DNS)
			  <host>.<clusterid>.<svc>.<ns>.svc.clusterset.local    MCS DNS spec (CoreDNS >= 1.12.2, multicluster)
			  <host>.<svc>.<ns>.svc.clusterset.local                the vendor form (needs a rewrite rule)
			  <svc>.<ns>.svc.clusterset.local, _<port>._<proto>.<svc>.<ns>.svc.clusterset.local, dns-version.clusterset.local

			Answers follow the MCS DNS specification as upstream CoreDNS serves it: ready endpoints
			only. The HERE column says whether the consumer's CoreDNS (ConfigMap kube-system/coredns)
			is set up to serve the form. When nothing answers, resolve names the first broken link
			(no Service, no export, invalid export, not imported, namespace missing, endpoint not
			ready, DNS not set up) and the command that fixes it. --dns-server also asks a live DNS
			server and marks every disagreement.`),
		Example: templates.Examples(`
			kubectl mcs resolve mysql-0 -n provider-ns --context cluster2
			kubectl mcs resolve mysql-0.cluster1.mysql.provider-ns.svc.clusterset.local --context cluster2
			kubectl mcs resolve mysql -n provider-ns --context cluster2 -o yaml
			kubectl mcs resolve mysql -n provider-ns --context cluster2 -o jsonpath='{.names[*].answer}'`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Target = args[0]
			o.clustersGiven = cmd.Flags().Changed("clusters")
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Clusters, "clusters", "", "Kubeconfig contexts of the clusterset, to explain missing answers (default $"+ClustersEnv+", else all contexts).")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look in every namespace.")
	cmd.Flags().StringVar(&o.DNSServer, "dns-server", "", "Also query this DNS server (HOST:PORT) and mark every disagreement.")
	// A row is a DNS name and an answer, not an object: no -o name.
	o.output = newReportOutput(cmd, nil, false, "{.names[*].answer}")
	return cmd
}

// Validate checks the flags.
func (o *ResolveOptions) Validate() error {
	if err := o.output.validate("resolve"); err != nil {
		return err
	}
	if o.DNSServer != "" {
		if _, port, err := net.SplitHostPort(o.DNSServer); err != nil || port == "" {
			return fmt.Errorf("--dns-server %q is not HOST:PORT (e.g. 10.96.0.10:53)", o.DNSServer)
		}
	}
	return checkNamespaceScope(o.Loader, o.AllNamespaces)
}

// ResolveReport is what resolve prints (as a table, or -o json|yaml).
type ResolveReport struct {
	Consumer string         `json:"consumer"`
	Target   string         `json:"target"`
	DNSSetup DNSSetup       `json:"dnsSetup"`
	Names    []ResolvedName `json:"names"`
	Notes    []string       `json:"notes,omitempty"`
	Broken   *BrokenLink    `json:"brokenLink,omitempty"`
}

// DNSSetup is what the consumer's CoreDNS serves, from its Corefile.
type DNSSetup struct {
	// Known is false when the Corefile could not be read.
	Known         bool   `json:"known"`
	Source        string `json:"source"`
	ClusterSet    bool   `json:"clusterSet"`
	VendorRewrite bool   `json:"vendorRewrite"`
}

// ResolvedName is one name and one answer it gives.
type ResolvedName struct {
	Name     string `json:"name"`
	Form     string `json:"form"`
	Type     string `json:"type"`
	Answer   string `json:"answer,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Ready    bool   `json:"ready"`
	Served   bool   `json:"served"`
	Reason   string `json:"reason,omitempty"`
	ServedBy string `json:"servedBy"`
	// Here: whether the consumer's DNS is set up for the form: yes, no, unknown.
	Here string `json:"here"`
	// Live is the --dns-server comparison: "agrees" or what differs.
	Live string `json:"live,omitempty"`
}

// BrokenLink is the first missing link between a pod and its DNS name.
type BrokenLink struct {
	Link    string `json:"link"`
	Cluster string `json:"cluster,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Run reads the consumer, answers, explains, and prints.
func (o *ResolveOptions) Run(ctx context.Context) error {
	target, err := dns.ParseTarget(o.Target)
	if err != nil {
		return err
	}
	consumer, err := connectCurrent(ctx, o.Loader)
	if err != nil {
		return err
	}
	scope := snapshot.Scope{}
	switch {
	case target.IsName():
		scope.Namespace = target.Name.Namespace
	case !o.AllNamespaces:
		scope.Namespace = consumer.Namespace
	}
	state, setup, err := readConsumerDNS(ctx, consumer, scope)
	if err != nil {
		return err
	}
	report := ResolveReport{Consumer: consumer.Context, Target: o.Target, DNSSetup: setup, Names: []ResolvedName{}}
	if !target.IsName() {
		// A derived Service (amcs-mysql, as k9s's Services view passes it)
		// stands for the ServiceImport it carries, unless the word is an
		// imported service's own name (a Service may be named amcs-x).
		ownName := slices.ContainsFunc(state.Imports, func(si mcsv1beta1.ServiceImport) bool {
			return si.Name == target.Word && (scope.Namespace == "" || si.Namespace == scope.Namespace)
		})
		for _, si := range state.Imports {
			if !ownName && reconcile.DerivedServiceOf(&si) == target.Word && (scope.Namespace == "" || si.Namespace == scope.Namespace) {
				report.Notes = append(report.Notes, fmt.Sprintf("%s is the derived Service of the ServiceImport %s/%s: resolving %s", target.Word, si.Namespace, si.Name, si.Name))
				target.Word = si.Name
				break
			}
		}
	}
	names, notes := answerTarget(state, setup, target, scope.Namespace)
	report.Names, report.Notes = names, append(report.Notes, notes...)
	if !anyServed(report.Names) {
		report.Broken, err = o.diagnose(ctx, consumer, state, setup, target, scope, report.Names)
		if err != nil {
			return err
		}
	}
	if o.DNSServer != "" {
		compareLive(ctx, o.DNSServer, report.Names)
	}
	if o.output.format() != "" {
		if err := o.output.printReport(o.Out, report); err != nil {
			return err
		}
	} else if err := printResolveReport(o.Out, report, o.DNSServer != ""); err != nil {
		return err
	}
	if report.Broken != nil {
		return &ExitError{Code: 1}
	}
	for _, n := range report.Names {
		if strings.HasPrefix(n.Live, "differs") {
			return &ExitError{Code: 1, Err: fmt.Errorf("the DNS server %s disagrees with the imported state (see LIVE)", o.DNSServer)}
		}
	}
	return nil
}

// readConsumerDNS reads what the consumer's DNS answers from: its imports,
// derived Services and mirrored slices, and its CoreDNS Corefile.
func readConsumerDNS(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (dns.State, DNSSetup, error) {
	// The Corefile is read alongside the consumer's objects: one round trip.
	var cm *corev1.ConfigMap
	var cmErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		cm, cmErr = c.Kube.CoreV1().ConfigMaps(corednsNamespace).Get(ctx, corednsConfigMap, metav1.GetOptions{})
	}()
	con, err := snapshot.ReadConsumer(ctx, c, scope)
	<-read
	if err != nil {
		return dns.State{}, DNSSetup{}, err
	}
	state := dns.State{ClusterID: c.ID, Imports: con.Imports, Services: con.Services, EndpointSlices: con.EndpointSlices}
	setup := DNSSetup{Source: "ConfigMap kube-system/coredns"}
	err = cmErr
	switch {
	case err == nil && cm.Data["Corefile"] != "":
		report := dns.CheckCorefile(cm.Data["Corefile"])
		setup.Known, setup.ClusterSet, setup.VendorRewrite = true, report.ServesClusterSet(), report.VendorRewrite
	case err == nil:
		setup.Source = "ConfigMap kube-system/coredns has no Corefile"
	case apierrors.IsNotFound(err):
		setup.Source = "no ConfigMap kube-system/coredns"
	case apierrors.IsForbidden(err):
		setup.Source = "ConfigMap kube-system/coredns not readable"
	default:
		return dns.State{}, DNSSetup{}, c.Errorf("reading ConfigMap kube-system/coredns: %w", err)
	}
	return state, setup, nil
}

// here says whether the consumer's DNS is set up to serve a form.
func (s DNSSetup) here(servedBy dns.ServedBy) string {
	switch {
	case servedBy == dns.ServedByClusterDNS:
		return "yes"
	case !s.Known:
		return "unknown"
	case servedBy == dns.ServedByMulticluster && s.ClusterSet, servedBy == dns.ServedByRewrite && s.VendorRewrite && s.ClusterSet:
		return "yes"
	}
	return "no"
}

// answerTarget lists the names that reach the target with their answers.
func answerTarget(state dns.State, setup DNSSetup, target dns.Target, namespace string) ([]ResolvedName, []string) {
	var names []ResolvedName
	var notes []string
	if !target.IsName() {
		reaches := dns.NamesForHost(state, namespace, target.Word)
		for _, r := range reaches {
			for _, addr := range r.Addresses {
				names = append(names, ResolvedName{
					Name: r.Name.String(), Form: string(r.Name.Form), Type: addressType(addr), Answer: addr,
					Cluster: r.Cluster, Ready: r.Ready, Served: r.Served, Reason: r.Reason,
					ServedBy: string(r.ServedBy), Here: setup.here(r.ServedBy),
				})
			}
			if len(r.SharedWith) > 0 {
				notes = appendOnce(notes, fmt.Sprintf("%s is exported by %s and also by %s: names without a cluster id answer with all of them; use <host>.<clusterid>... to reach one",
					r.Hostname, r.Cluster, strings.Join(r.SharedWith, ", ")))
			}
		}
		if len(reaches) > 0 {
			return names, notes
		}
		for _, a := range dns.NamesForService(state, namespace, target.Word) {
			names = append(names, answerRows(a, setup)...)
			notes = appendNotes(notes, a.Notes)
		}
		return names, notes
	}
	a := dns.Resolve(state, target.Name)
	names = answerRows(a, setup)
	if len(names) == 0 {
		names = append(names, ResolvedName{Name: a.Name.String(), Form: string(a.Name.Form), Type: "-", ServedBy: string(a.ServedBy),
			Here: setup.here(a.ServedBy), Reason: string(a.Status)})
	}
	return names, appendNotes(notes, a.Notes)
}

func answerRows(a dns.Answer, setup DNSSetup) []ResolvedName {
	var rows []ResolvedName
	row := func(r dns.Record, served bool, reason string) ResolvedName {
		answer := r.Address
		switch r.Type {
		case dns.RecordSRV:
			answer = r.Target + ":" + strconv.Itoa(int(r.Port))
		case dns.RecordTXT:
			answer = strconv.Quote(r.Text)
		}
		return ResolvedName{Name: a.Name.String(), Form: string(a.Name.Form), Type: string(r.Type), Answer: answer, Cluster: r.Cluster,
			Ready: r.Ready, Served: served, Reason: reason, ServedBy: string(a.ServedBy), Here: setup.here(a.ServedBy)}
	}
	for _, r := range a.Records {
		rows = append(rows, row(r, true, ""))
	}
	for _, u := range a.Unserved {
		rows = append(rows, row(u.Record, false, u.Reason))
	}
	return rows
}

func addressType(addr string) string {
	if strings.Contains(addr, ":") {
		return string(dns.RecordAAAA)
	}
	return string(dns.RecordA)
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func appendNotes(list, notes []string) []string {
	for _, n := range notes {
		list = appendOnce(list, n)
	}
	return list
}

// anyServed: some name answers with something, with this consumer's DNS.
func anyServed(names []ResolvedName) bool {
	return slices.ContainsFunc(names, func(n ResolvedName) bool { return n.Served && n.Here != "no" })
}

func printResolveReport(out io.Writer, r ResolveReport, live bool) error {
	headers := []string{"NAME", "TYPE", "ANSWER", "CLUSTER", "READY", "SERVED BY", "HERE"}
	if live {
		headers = append(headers, "LIVE")
	}
	var rows [][]string
	for _, n := range r.Names {
		ready := "yes"
		if !n.Ready {
			ready = "no"
		}
		if n.Reason != "" && !n.Served {
			ready += " (" + n.Reason + ")"
		}
		row := []string{n.Name, n.Type, orDash(n.Answer), orDash(n.Cluster), ready, n.ServedBy, n.Here}
		if live {
			row = append(row, orDash(n.Live))
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		if err := printers.Table(out, headers, rows); err != nil {
			return err
		}
	}
	if !r.DNSSetup.Known {
		fmt.Fprintf(out, "DNS setup of %s: unknown (%s); HERE says unknown for clusterset.local names\n", r.Consumer, r.DNSSetup.Source)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(out, "Note: %s\n", n)
	}
	if b := r.Broken; b != nil {
		where := ""
		if b.Cluster != "" {
			where = b.Cluster + ": "
		}
		fmt.Fprintf(out, "No answer for %s in %s: %s%s\n", r.Target, r.Consumer, where, b.Message)
		if b.Fix != "" {
			fmt.Fprintf(out, "Fix: %s\n", b.Fix)
		}
	}
	return nil
}

func isNotFoundErr(err error) bool { return apierrors.IsNotFound(err) }
