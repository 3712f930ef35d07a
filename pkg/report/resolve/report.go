// Package resolve is the report of `kubectl mcs resolve`: every DNS name
// that reaches a pod or service, with the answer pkg/dns gives from the
// consumer's imported state, whether the consumer's CoreDNS serves the
// name's form, and, when nothing answers, the first broken link between the
// pod and its name, found by reading the clusterset through pkg/snapshot and
// deciding through pkg/reconcile. pkg/cmd only parses flags and prints it.
package resolve

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Report is what resolve prints (as a table, or -o json|yaml).
type Report struct {
	Consumer string      `json:"consumer"`
	Target   string      `json:"target"`
	DNSSetup DNSSetup    `json:"dnsSetup"`
	Names    []Name      `json:"names"`
	Notes    []string    `json:"notes,omitempty"`
	Broken   *BrokenLink `json:"brokenLink,omitempty"`
}

// DNSSetup is what the consumer's CoreDNS serves, from its Corefile.
type DNSSetup struct {
	// Known is false when the Corefile could not be read.
	Known         bool   `json:"known"`
	Source        string `json:"source"`
	ClusterSet    bool   `json:"clusterSet"`
	VendorRewrite bool   `json:"vendorRewrite"`
}

// Name is one name and one answer it gives.
type Name struct {
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

// ReadConsumerDNS reads what the consumer's DNS answers from: its imports,
// derived Services and mirrored slices, and its CoreDNS Corefile.
func ReadConsumerDNS(ctx context.Context, c *clusterset.Cluster, scope snapshot.Scope) (dns.State, DNSSetup, error) {
	// The Corefile is read alongside the consumer's objects: one round trip.
	var cm *corev1.ConfigMap
	var cmErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		cm, cmErr = c.Kube.CoreV1().ConfigMaps(dns.CoreDNSNamespace).Get(ctx, dns.CoreDNSConfigMap, metav1.GetOptions{})
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

// ServiceOfDerived: a derived Service (amcs-mysql, as k9s's Services view
// passes it) stands for the ServiceImport it carries, unless the word is an
// imported service's own name (a Service may be named amcs-x). It returns
// the target to answer, and a note where it changed.
func ServiceOfDerived(state dns.State, target dns.Target, namespace string) (dns.Target, []string) {
	if target.IsName() {
		return target, nil
	}
	ownName := slices.ContainsFunc(state.Imports, func(si mcsv1beta1.ServiceImport) bool {
		return si.Name == target.Word && (namespace == "" || si.Namespace == namespace)
	})
	for _, si := range state.Imports {
		if !ownName && reconcile.DerivedServiceOf(&si) == target.Word && (namespace == "" || si.Namespace == namespace) {
			note := fmt.Sprintf("%s is the derived Service of the ServiceImport %s/%s: resolving %s", target.Word, si.Namespace, si.Name, si.Name)
			target.Word = si.Name
			return target, []string{note}
		}
	}
	return target, nil
}

// Answers lists the names that reach the target with their answers.
func Answers(state dns.State, setup DNSSetup, target dns.Target, namespace string) ([]Name, []string) {
	var names []Name
	var notes []string
	if !target.IsName() {
		reaches := dns.NamesForHost(state, namespace, target.Word)
		for _, r := range reaches {
			for _, addr := range r.Addresses {
				names = append(names, Name{
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
		names = append(names, Name{Name: a.Name.String(), Form: string(a.Name.Form), Type: "-", ServedBy: string(a.ServedBy),
			Here: setup.here(a.ServedBy), Reason: string(a.Status)})
	}
	return names, appendNotes(notes, a.Notes)
}

func answerRows(a dns.Answer, setup DNSSetup) []Name {
	var rows []Name
	row := func(r dns.Record, served bool, reason string) Name {
		answer := r.Address
		switch r.Type {
		case dns.RecordSRV:
			answer = r.Target + ":" + strconv.Itoa(int(r.Port))
		case dns.RecordTXT:
			answer = strconv.Quote(r.Text)
		}
		return Name{Name: a.Name.String(), Form: string(a.Name.Form), Type: string(r.Type), Answer: answer, Cluster: r.Cluster,
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

// AnyServed: some name answers with something, with this consumer's DNS.
func AnyServed(names []Name) bool {
	return slices.ContainsFunc(names, func(n Name) bool { return n.Served && n.Here != "no" })
}

// Build is resolve's report of target as the consumer's DNS answers it:
// the consumer's state read in scope (the target's namespace, else
// namespace; every namespace when namespace is empty), every name of the
// target and its answer, the notes, and, when no name is served, the first
// broken link found across the clusterset. With dnsServer, each answer is
// also asked of that live server.
func Build(ctx context.Context, consumer *clusterset.Cluster, target dns.Target, targetText, namespace string, members Clusterset, dnsServer string) (Report, error) {
	scope := snapshot.Scope{Namespace: namespace}
	if target.IsName() {
		scope.Namespace = target.Name.Namespace
	}
	state, setup, err := ReadConsumerDNS(ctx, consumer, scope)
	if err != nil {
		return Report{}, err
	}
	report := Report{Consumer: consumer.Context, Target: targetText, DNSSetup: setup, Names: []Name{}}
	target, report.Notes = ServiceOfDerived(state, target, scope.Namespace)
	names, notes := Answers(state, setup, target, scope.Namespace)
	report.Names, report.Notes = names, append(report.Notes, notes...)
	if !AnyServed(report.Names) {
		report.Broken, err = members.Diagnose(ctx, consumer, state, target, targetText, scope, report.Names)
		if err != nil {
			return Report{}, err
		}
	}
	if dnsServer != "" {
		CompareLive(ctx, dnsServer, report.Names)
	}
	return report, nil
}
