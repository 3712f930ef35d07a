package cmd

import (
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/duration"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/printers"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/report/status"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

func printStatusTable(out io.Writer, report status.Report, wide bool, scope snapshot.Scope, now time.Time) error {
	if len(report.Services) == 0 {
		where := "in namespace " + scope.Namespace
		if scope.Namespace == "" {
			where = "in any namespace"
		}
		_, err := fmt.Fprintf(out, "No exported or imported services found %s.\n", where)
		return err
	}
	headers := []string{"NAMESPACE", "SERVICE", "TYPE", "EXPORTED BY", "IMPORTED IN", "PORTS", "ENDPOINTS", "CONFLICT", "AGE"}
	if wide {
		headers = append(headers, "DNS", "DERIVED", "IPS")
	}
	var rows [][]string
	var fixes []string
	for _, s := range report.Services {
		var exported, imported []string
		for _, e := range s.ExportedBy {
			if e.Valid {
				exported = append(exported, e.Cluster)
			} else {
				exported = append(exported, e.Cluster+"("+e.Reason+")")
			}
		}
		for _, i := range s.ImportedIn {
			if i.Stale {
				imported = append(imported, i.Cluster+"(STALE)")
				fixes = append(fixes, fmt.Sprintf("STALE: %s/%s in %s differs from what its sources export; fix: %s", s.Namespace, s.Service, i.Cluster, i.Fix))
			} else {
				imported = append(imported, i.Cluster)
			}
		}
		age := "<unknown>"
		if s.Created != nil && !s.Created.IsZero() {
			age = duration.HumanDuration(now.Sub(s.Created.Time))
		}
		row := []string{s.Namespace, s.Service, orDash(s.Type), orDash(strings.Join(exported, ",")), orDash(strings.Join(imported, ",")),
			orDash(strings.Join(s.Ports, ",")), s.Endpoints.String(), orDash(strings.Join(s.Conflicts, ",")), age}
		if wide {
			row = append(row, strings.Join(s.DNSNames, ","), s.Derived, orDash(strings.Join(s.IPs, ",")))
		}
		rows = append(rows, row)
	}
	if err := printers.Table(out, headers, rows); err != nil {
		return err
	}
	for _, m := range report.MissingNamespaces {
		fixes = append(fixes, fmt.Sprintf("%s lacks namespace %s: %s not imported there (fix: %s)", m.Cluster, m.Namespace, strings.Join(m.Services, ", "), m.Fix))
	}
	for _, f := range fixes {
		if _, err := fmt.Fprintln(out, f); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusObjects are the objects the rows of status name, for -o name: a
// row's ServiceExport where a cluster exports the service, else (an import
// whose exports are gone) its ServiceImport. Only the kind's group, the
// name and the namespace are set: -o name prints kind.group/name.
func statusObjects(report status.Report) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	for _, s := range report.Services {
		kind := mcsv1beta1.ServiceExportKindName
		if len(s.ExportedBy) == 0 {
			kind = mcsv1beta1.ServiceImportKindName
		}
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(mcsv1beta1.GroupVersion.String())
		o.SetKind(kind)
		o.SetNamespace(s.Namespace)
		o.SetName(s.Service)
		objs = append(objs, o)
	}
	return objs
}
