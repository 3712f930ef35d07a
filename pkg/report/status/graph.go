package status

import (
	"fmt"
	"io"
	"strings"
)

// A picture of the clusterset for `status -o dot|mermaid`: one box per
// cluster, one edge per export -> import of a service, labeled with the
// service; an out-of-date import is dashed and says STALE, a service whose
// exports conflict is red and names the conflicts, an unreachable cluster
// is a dashed red box. Every cluster of a KEP-1645 clusterset imports what
// it exports, so an exporter's own import is an edge to itself.

// graphEdge is one export -> import of a service.
type graphEdge struct {
	from, to  int // indexes into the report's clusters
	label     string
	stale     bool
	conflicts string
}

// graphOf lists the clusters (as the report has them, sorted by context)
// and the edges, in the report's service order.
func graphOf(report Report) ([]Cluster, []graphEdge) {
	byID := map[string]int{}
	for i, c := range report.Clusters {
		if c.ID != "" {
			byID[c.ID] = i
		}
	}
	var edges []graphEdge
	for _, s := range report.Services {
		for _, e := range s.ExportedBy {
			from, ok := byID[e.Cluster]
			if !ok || !e.Valid {
				continue
			}
			for _, imp := range s.ImportedIn {
				to, ok := byID[imp.Cluster]
				if !ok {
					continue
				}
				edges = append(edges, graphEdge{from: from, to: to, label: s.Namespace + "/" + s.Service,
					stale: imp.Stale, conflicts: strings.Join(s.Conflicts, ",")})
			}
		}
	}
	return report.Clusters, edges
}

func (e graphEdge) text() string {
	t := e.label
	if e.stale {
		t += " (STALE)"
	}
	if e.conflicts != "" {
		t += " conflict: " + e.conflicts
	}
	return t
}

func clusterLabel(c Cluster) string {
	label := c.Context
	if c.ID != "" && c.ID != c.Context {
		label += " (id " + c.ID + ")"
	}
	if c.Error != "" {
		label += " unreachable"
	}
	return label
}

// WriteDot writes the picture in Graphviz's language:
// `kubectl mcs status -A -o dot | dot -Tsvg > clusterset.svg`.
func WriteDot(out io.Writer, report Report) error {
	clusters, edges := graphOf(report)
	var b strings.Builder
	b.WriteString("digraph clusterset {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n")
	for i, c := range clusters {
		attrs := fmt.Sprintf("label=%q", clusterLabel(c))
		if c.Error != "" {
			attrs += `, style="rounded,dashed", color=red`
		}
		fmt.Fprintf(&b, "  c%d [%s];\n", i, attrs)
	}
	for _, e := range edges {
		attrs := fmt.Sprintf("label=%q", e.text())
		if e.stale {
			attrs += ", style=dashed"
		}
		if e.conflicts != "" {
			attrs += ", color=red, fontcolor=red"
		}
		fmt.Fprintf(&b, "  c%d -> c%d [%s];\n", e.from, e.to, attrs)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// WriteMermaid writes the picture as a Mermaid flowchart, which
// GitHub and most wikis render inline in a ```mermaid block.
func WriteMermaid(out io.Writer, report Report) error {
	clusters, edges := graphOf(report)
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, c := range clusters {
		fmt.Fprintf(&b, "  c%d[%q]\n", i, clusterLabel(c))
		if c.Error != "" {
			fmt.Fprintf(&b, "  class c%d unreachable\n", i)
		}
	}
	var red []string
	for i, e := range edges {
		arrow := "-->"
		if e.stale {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  c%d %s|%q| c%d\n", e.from, arrow, e.text(), e.to)
		if e.conflicts != "" {
			red = append(red, fmt.Sprint(i))
		}
	}
	b.WriteString("  classDef unreachable stroke:#c00,stroke-dasharray:5 5\n")
	if len(red) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:#c00,color:#c00\n", strings.Join(red, ","))
	}
	_, err := io.WriteString(out, b.String())
	return err
}
