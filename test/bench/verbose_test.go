package bench

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
)

var responseLine = regexp.MustCompile(`"Response" verb="([A-Z]+)" url="([^"]+)"`)

// requestLog runs the plugin binary with -v=6 and returns, per cluster
// name, its requests as "VERB resource" lines, in order: the measured
// cause of every round trip.
func requestLog(t *testing.T, set *localcluster.Set, args ...string) map[string][]string {
	t.Helper()
	c := exec.Command(pluginBinary(t), append(args, "-v=6")...)
	c.Env = append(os.Environ(), "KUBECONFIG="+set.Kubeconfig)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl mcs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	byHost := map[string]string{}
	for _, cl := range set.Clusters {
		u, _ := url.Parse(cl.Server)
		byHost[u.Host] = cl.Name
	}
	log := map[string][]string{}
	for _, m := range responseLine.FindAllStringSubmatch(string(out), -1) {
		u, err := url.Parse(m[2])
		if err != nil {
			continue
		}
		log[byHost[u.Host]] = append(log[byHost[u.Host]], m[1]+" "+resourceOf(u.Path))
	}
	return log
}

// resourceOf shortens an API path to its resource: "serviceexports",
// "serviceimports/status", "namespace" (a GET of one namespace), ...
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// /api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]] or /apis/G/V/...
	i := 2
	if parts[0] == "apis" {
		i = 3
	}
	rest := parts[min(i, len(parts)):]
	if len(rest) >= 2 && rest[0] == "namespaces" {
		if len(rest) == 2 {
			return "namespace"
		}
		rest = rest[2:]
	}
	switch len(rest) {
	case 0:
		return "discovery " + path
	case 1, 2:
		return rest[0]
	default:
		return rest[0] + "/" + rest[2]
	}
}

// summarize folds a request log into "VERB resource xN" items.
func summarize(reqs []string) string {
	n := map[string]int{}
	var order []string
	for _, r := range reqs {
		if n[r] == 0 {
			order = append(order, r)
		}
		n[r]++
	}
	slices.Sort(order)
	var out []string
	for _, r := range order {
		if n[r] > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", r, n[r]))
		} else {
			out = append(out, r)
		}
	}
	return strings.Join(out, ", ")
}
