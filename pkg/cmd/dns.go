package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/dns"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
)

// DNSOptions checks, and on request patches, the consumer's CoreDNS
// Corefile so it serves clusterset.local (seed step 3).
type DNSOptions struct {
	Loader *clusterset.Loader
	genericiooptions.IOStreams

	Patch      bool
	VendorForm bool
	Output     string
	DryRun     cmdutil.DryRunStrategy
}

// NewCmdDNS builds `kubectl mcs dns`.
func NewCmdDNS(loader *clusterset.Loader, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DNSOptions{Loader: loader, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "dns [--patch [--vendor-form]] [--context CLUSTER]",
		Short: "Check or set up CoreDNS to serve clusterset.local",
		Long: templates.LongDesc(`
			Check whether the cluster's CoreDNS (ConfigMap kube-system/coredns) serves the
			clusterset.local zone of the MCS DNS specification, and with --patch set it up the
			upstream way (CoreDNS >= 1.12.2): clusterset.local added to the kubernetes plugin's
			zones and "multicluster clusterset.local" inside its block. A top-level
			"multicluster clusterset.local" line (a vendor plugin, which upstream CoreDNS refuses)
			is moved there.

			--vendor-form also serves the vendor's cluster-id-less names
			<host>.<svc>.<ns>.svc.clusterset.local, with a rewrite rule onto the derived Service's
			<host>.amcs-<svc>.<ns>.svc.cluster.local. The patch is idempotent; --dry-run shows the diff.

			Without --patch, the exit code answers the check, as "kubectl diff" and
			"kubectl auth can-i" do: 0 when CoreDNS serves clusterset.local (and, with
			--vendor-form, the vendor form too), 1 when it does not, so a script can wait for a
			cluster to be ready. With --patch, 0 once the Corefile is (or, with --dry-run, would
			be) patched.`),
		Example: templates.Examples(`
			kubectl mcs dns --context cluster2
			kubectl mcs dns --vendor-form --context cluster2 && echo ready
			kubectl mcs dns --patch --vendor-form --dry-run=client --context cluster2
			kubectl mcs dns --patch --context cluster2`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.DryRun, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
				return err
			}
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.Patch, "patch", false, "Patch the Corefile so CoreDNS serves clusterset.local.")
	cmd.Flags().BoolVar(&o.VendorForm, "vendor-form", false, "Also serve <host>.<svc>.<ns>.svc.clusterset.local through a rewrite rule (with --patch), or check that it is served.")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml prints the check (and the patched Corefile).")
	cmdutil.AddDryRunFlag(cmd)
	return cmd
}

// Validate checks flag combinations.
func (o *DNSOptions) Validate(cmd *cobra.Command) error {
	if cmd.Flags().Changed("dry-run") && !o.Patch {
		return errors.New("--dry-run only applies with --patch (without it, dns only reads)")
	}
	return validateOutput("dns", o.Output, "json", "yaml")
}

// DNSReport is what dns prints with -o json|yaml.
type DNSReport struct {
	Cluster        string   `json:"cluster"`
	CoreDNSVersion string   `json:"corednsVersion,omitempty"`
	ServesZone     bool     `json:"servesClusterSetLocal"`
	VendorForm     bool     `json:"servesVendorForm"`
	Problems       []string `json:"problems,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	Changes        []string `json:"changes,omitempty"`
	Patched        string   `json:"patchedCorefile,omitempty"`
	Result         string   `json:"result,omitempty"`
}

// Run reads the Corefile, reports, and patches on request.
func (o *DNSOptions) Run(ctx context.Context) error {
	c, err := connectCurrent(ctx, o.Loader)
	if err != nil {
		return err
	}
	coredns, err := dns.ReadCoreDNS(ctx, c.Kube)
	if err != nil {
		return c.Wrap(err)
	}
	corefile, check := coredns.Corefile(), coredns.Check
	report := DNSReport{Cluster: c.Context, ServesZone: check.ServesClusterSet(), VendorForm: check.VendorRewrite, Problems: check.Problems, Warnings: check.Warnings}
	if coredns.Version != nil {
		report.CoreDNSVersion = coredns.Version.String()
	}
	if !o.Patch {
		if err := o.print(report, nil); err != nil {
			return err
		}
		if !report.ServesZone || o.VendorForm && !report.VendorForm {
			// The answer is the exit code; the report above says why.
			return &ExitError{Code: 1}
		}
		return nil
	}
	patch, err := dns.PlanCorefilePatch(corefile, dns.PatchOptions{VendorForm: o.VendorForm})
	if err != nil {
		return c.Errorf("cannot patch the Corefile of ConfigMap kube-system/coredns: %w", err)
	}
	report.Changes = patch.Changes
	if patch.Corefile == corefile {
		report.Result = "configmap/coredns unchanged"
		return o.print(report, nil)
	}
	if coredns.TooOld() {
		return c.Errorf("CoreDNS %s lacks the kubernetes plugin's multicluster option (it needs >= %s, and would refuse the patched Corefile); upgrade CoreDNS first, nothing was changed",
			coredns.Version, dns.MinCoreDNSVersion)
	}
	if coredns.VersionErr != nil {
		fmt.Fprintf(o.ErrOut, "Warning: %s: %v; make sure CoreDNS is >= %s before it reloads this Corefile\n", c.Context, coredns.VersionErr, dns.MinCoreDNSVersion)
	}
	report.Patched = patch.Corefile
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(corefile), B: difflib.SplitLines(patch.Corefile),
		FromFile: "Corefile (kube-system/coredns)", ToFile: "Corefile (patched)", Context: 2,
	})
	if o.DryRun != cmdutil.DryRunClient {
		if err := coredns.WriteCorefile(ctx, c.Kube, patch.Corefile, o.DryRun == cmdutil.DryRunServer); err != nil {
			return c.Wrap(err)
		}
	}
	report.Result = "configmap/coredns patched" + apply.DryRunSuffix(o.DryRun)
	return o.print(report, &diff)
}

func (o *DNSOptions) print(r DNSReport, diff *string) error {
	if o.Output != "" {
		return printers.Structured(o.Out, o.Output, r)
	}
	served := "does not serve"
	if r.ServesZone {
		served = "serves"
	}
	version := ""
	if r.CoreDNSVersion != "" {
		version = " " + r.CoreDNSVersion
	}
	before := ""
	if r.Result != "" {
		before = " (before the patch)"
	}
	fmt.Fprintf(o.Out, "%s: CoreDNS%s %s clusterset.local", r.Cluster, version, served)
	if r.VendorForm {
		fmt.Fprint(o.Out, ", and the vendor form <host>.<svc>.<ns>.svc.clusterset.local")
	}
	fmt.Fprintln(o.Out, before)
	if r.Result == "" {
		for _, p := range r.Problems {
			fmt.Fprintf(o.Out, "  problem: %s\n", p)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(o.Out, "  warning: %s\n", w)
	}
	if diff != nil && *diff != "" {
		fmt.Fprint(o.Out, *diff)
	}
	for _, ch := range r.Changes {
		fmt.Fprintf(o.Out, "  change: %s\n", ch)
	}
	if r.Result != "" {
		fmt.Fprintln(o.Out, r.Result)
	} else if !r.ServesZone || o.VendorForm && !r.VendorForm {
		vendor := ""
		if o.VendorForm {
			vendor = " --vendor-form"
		}
		fmt.Fprintf(o.Out, "Fix: kubectl mcs dns --patch%s --context %s\n", vendor, r.Cluster)
	}
	return nil
}
