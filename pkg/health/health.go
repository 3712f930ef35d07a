// Package health checks a clusterset from the ground up, as `kubectl mcs
// check` reports it: each cluster's API, MCS CRDs, cluster id, permissions
// and CoreDNS, then what the MCS rules make of the exports and imports
// (namespace sameness, validity and conflicts, stale imports, orphaned
// objects, other writers). It only reads. Every rule is the one the verbs
// that write already apply (pkg/reconcile over a pkg/snapshot read, the
// engine's permission review, pkg/dns's Corefile check, pkg/clusterset's
// cluster id); this package adds the reading and the verdicts.
package health

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// Result is the verdict of one check.
type Result string

const (
	Pass Result = "pass"
	// Warn is worth a look but does not fail the run.
	Warn Result = "warning"
	Fail Result = "fail"
)

// Check is one named check of one cluster (Cluster is empty for a check
// of the whole clusterset).
type Check struct {
	Name    string   `json:"check"`
	Cluster string   `json:"cluster,omitempty"`
	Result  Result   `json:"result"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
	// Fix lists the commands (or steps) that make a failing check pass.
	Fix []string `json:"fix,omitempty"`
}

// Category groups the checks of one subject.
type Category struct {
	Name   string  `json:"category"`
	Checks []Check `json:"checks"`
}

// Report is the outcome of a run: Success is false when a check failed.
type Report struct {
	Success    bool       `json:"success"`
	Categories []Category `json:"categories"`
}

// Named lists the checks with that result, as "category/check/cluster",
// in the order they are reported.
func (r Report) Named(result Result) []string {
	var out []string
	for _, cat := range r.Categories {
		for _, c := range cat.Checks {
			if c.Result == result {
				out = append(out, cat.Name+"/"+c.Name+"/"+c.Cluster)
			}
		}
	}
	return out
}

// The categories, in the order they are reported.
const (
	CategoryAPI         = "Kubernetes API"
	CategoryCRDs        = "MCS CRDs"
	CategoryIDs         = "Cluster ids"
	CategoryRBAC        = "Permissions"
	CategoryDNS         = "CoreDNS"
	CategoryNamespaces  = "Namespace sameness"
	CategoryExports     = "Exports"
	CategoryImports     = "Imports"
	CategoryControllers = "Other controllers"
	CategoryLiveDNS     = "Live DNS"
)

var categoryOrder = []string{CategoryAPI, CategoryCRDs, CategoryIDs, CategoryRBAC, CategoryDNS,
	CategoryNamespaces, CategoryExports, CategoryImports, CategoryControllers, CategoryLiveDNS}

// Options say what to check.
type Options struct {
	// Scope limits the exports and imports looked at (Namespace "" = all).
	Scope snapshot.Scope
	// Pre keeps to the setup checks: API, CRDs, ids, permissions, CoreDNS.
	Pre bool
	// DNSServer, HOST:PORT, is asked every exported service's clusterset
	// name.
	DNSServer string
	// Now is the clock handed to the reconcile library (default time.Now).
	Now func() time.Time
}

// member is one context of the clusterset and what was learnt of it.
type member struct {
	context string
	cluster *clusterset.Cluster
	// sameAs is the earlier context naming the same API server; such a
	// context is checked once, under that name.
	sameAs string
	// up: the API answered; idOK: its id is valid and unique.
	up, idOK bool
	// read: its exports and imports were read into source and consumer.
	read     bool
	source   reconcile.Source
	consumer reconcile.Consumer
}

type run struct {
	opts    Options
	members []*member
	checks  map[string][]Check
	// plan is the whole-clusterset sync computed in memory (not in --pre).
	plan reconcile.Plan
	snap reconcile.Snapshot
}

// Run checks the clusterset: one member per context, connected (a member
// whose Err is set failed to connect and fails the API check). Clusters are
// read in parallel; a cluster that fails a check the later ones need (the
// API, its id) is left out of them rather than stopping the run.
func Run(ctx context.Context, members []clusterset.Member, opts Options) Report {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &run{opts: opts, checks: map[string][]Check{}}
	servers := map[string]string{}
	for _, m := range members {
		mm := &member{context: m.Context, cluster: m.Cluster}
		if m.Err != nil {
			r.add(CategoryAPI, Check{Name: "API reachable", Cluster: m.Context, Result: Fail, Message: message(m.Err),
				Fix: []string{"check the context in the kubeconfig: kubectl config view --minify --context " + m.Context}})
			mm.cluster = nil
		} else if first, ok := servers[m.Cluster.Server]; ok {
			mm.sameAs = first
		} else {
			servers[m.Cluster.Server] = m.Context
		}
		r.members = append(r.members, mm)
	}
	r.checkAPI(ctx)
	r.checkIDs(ctx)
	r.checkCRDs(ctx)
	r.checkDNS(ctx)
	if !opts.Pre {
		r.readSnapshot(ctx)
	}
	r.checkPermissions(ctx)
	if !opts.Pre {
		r.checkNamespaces()
		r.checkExports()
		r.checkImports()
		r.checkOtherControllers()
		if opts.DNSServer != "" {
			r.checkLiveDNS(ctx)
		}
	}
	return r.report()
}

func (r *run) add(category string, c Check) { r.checks[category] = append(r.checks[category], c) }

func (r *run) report() Report {
	rep := Report{Success: true}
	for _, name := range categoryOrder {
		checks := r.checks[name]
		if len(checks) == 0 {
			continue
		}
		for _, c := range checks {
			if c.Result == Fail {
				rep.Success = false
			}
		}
		rep.Categories = append(rep.Categories, Category{Name: name, Checks: checks})
	}
	return rep
}

// each returns the members passing filter (checked once per API server).
func (r *run) each(filter func(*member) bool) []*member {
	var out []*member
	for _, m := range r.members {
		if m.cluster != nil && m.sameAs == "" && filter(m) {
			out = append(out, m)
		}
	}
	return out
}

func isUp(m *member) bool      { return m.up }
func hasID(m *member) bool     { return m.up && m.idOK }
func wasRead(m *member) bool   { return m.read }
func anyMember(m *member) bool { return true }
func contexts(ms []*member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.context
	}
	return out
}

// forEach runs fn for every member in parallel (clusterset.ForEach) and
// returns fn's errors in the order of ms.
func forEach(ctx context.Context, ms []*member, fn func(ctx context.Context, m *member) error) []error {
	clusters := make([]*clusterset.Cluster, len(ms))
	for i, m := range ms {
		clusters[i] = m.cluster
	}
	return clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		return fn(ctx, ms[slices.IndexFunc(ms, func(m *member) bool { return m.cluster == c })])
	})
}

// byID finds the member a reconcile plan names by cluster id.
func (r *run) byID(id string) *member {
	for _, m := range r.each(wasRead) {
		if m.cluster.ID == id {
			return m
		}
	}
	return nil
}

// message is an error's text without the context name a clusterset.Error
// starts with: every check line already names its cluster.
func message(err error) string {
	var ce *clusterset.Error
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	return err.Error()
}

// scopeFlags are the namespace flags of a fix command for the run's scope.
func (r *run) scopeFlags() string {
	if r.opts.Scope.Namespace == "" {
		return "-A"
	}
	return "-n " + r.opts.Scope.Namespace
}

func joinComma(s []string) string { return strings.Join(s, ", ") }
