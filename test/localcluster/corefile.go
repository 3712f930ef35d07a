package localcluster

import (
	"fmt"
	"regexp"
	"strings"
)

// compiledPlugins are the plugins of the test bed's CoreDNS build
// (test/tools/coredns/main.go).
var compiledPlugins = map[string]bool{"bind": true, "reload": true, "errors": true, "log": true, "rewrite": true, "kubernetes": true, "whoami": true}

var serverPort = regexp.MustCompile(`^(\s*)(\S*):53(\s*\{)\s*$`)

// LocalizeCorefile turns a cluster's Corefile (as kept in ConfigMap
// kube-system/coredns) into a template StartCoreDNS can run on loopback
// against the local cluster, keeping every line that decides what is
// answered: port 53 becomes {{.Port}}, each server block binds 127.0.0.1,
// each kubernetes block gets the local kubeconfig, and plugins this CoreDNS
// build lacks or that would listen elsewhere or reach outside (health,
// ready, prometheus, forward, cache, loop, loadbalance, ...) are dropped
// with their blocks.
func LocalizeCorefile(corefile string) (string, error) {
	var out []string
	depth := 0
	skipUntil := -1 // depth at which a dropped directive's block ends
	for _, line := range strings.Split(corefile, "\n") {
		trimmed := strings.TrimSpace(line)
		opens, closes := strings.Count(stripComment(trimmed), "{"), strings.Count(stripComment(trimmed), "}")
		if skipUntil >= 0 {
			depth += opens - closes
			if depth <= skipUntil {
				skipUntil = -1
			}
			continue
		}
		switch {
		case depth == 0 && serverPort.MatchString(line):
			m := serverPort.FindStringSubmatch(line)
			out = append(out, m[1]+m[2]+":{{.Port}}"+m[3], m[1]+"    bind 127.0.0.1")
		case depth == 1 && trimmed != "" && !strings.HasPrefix(trimmed, "#") && trimmed != "}":
			name := strings.Fields(trimmed)[0]
			if !compiledPlugins[name] || name == "bind" {
				if opens > closes {
					skipUntil = depth
					depth += opens - closes
				}
				continue
			}
			if name == "kubernetes" {
				indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
				if opens > closes {
					out = append(out, line, indent+"    kubeconfig {{.Kubeconfig}} {{.Context}}")
				} else {
					out = append(out, line+" {", indent+"    kubeconfig {{.Kubeconfig}} {{.Context}}", indent+"}")
				}
				depth += opens - closes
				continue
			}
			out = append(out, line)
		default:
			out = append(out, line)
		}
		depth += opens - closes
	}
	if depth != 0 {
		return "", fmt.Errorf("unbalanced braces in Corefile")
	}
	result := strings.Join(out, "\n")
	if !strings.Contains(result, "{{.Port}}") {
		return "", fmt.Errorf("no server block on port 53 in Corefile:\n%s", corefile)
	}
	return result, nil
}

func stripComment(s string) string {
	if i := strings.Index(s, "#"); i >= 0 {
		return s[:i]
	}
	return s
}
