package clusterset_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

func TestDedupe(t *testing.T) {
	cl := func(ctx, id, server string) *clusterset.Cluster {
		return &clusterset.Cluster{Context: ctx, ID: id, Server: server}
	}
	t.Run("two contexts, one server: one cluster, the first", func(t *testing.T) {
		admin, user := cl("prod-admin", "prod", "https://prod:6443"), cl("prod-user", "prod", "https://prod:6443")
		other := cl("dev", "dev", "https://dev:6443")
		got, err := clusterset.Dedupe([]*clusterset.Cluster{admin, other, user})
		if err != nil {
			t.Fatalf("Dedupe: %v", err)
		}
		if !slices.Equal(got, []*clusterset.Cluster{admin, other}) {
			t.Errorf("Dedupe kept %v, want prod-admin, dev", contexts(got))
		}
	})
	t.Run("two servers, one id: error naming both", func(t *testing.T) {
		_, err := clusterset.Dedupe([]*clusterset.Cluster{
			cl("east", "prod", "https://east:6443"), cl("dev", "dev", "https://dev:6443"), cl("west", "prod", "https://west:6443"),
		})
		if err == nil {
			t.Fatal("Dedupe accepted two clusters with id prod")
		}
		for _, want := range []string{`"east"`, `"west"`, "https://east:6443", "https://west:6443", `cluster id "prod"`, "ClusterProperty cluster.clusterset.k8s.io"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %s", err, want)
			}
		}
	})
	t.Run("distinct clusters keep their order", func(t *testing.T) {
		a, b, c := cl("c", "c", "https://c"), cl("a", "a", "https://a"), cl("b", "b", "https://b")
		got, err := clusterset.Dedupe([]*clusterset.Cluster{a, b, c})
		if err != nil || !slices.Equal(got, []*clusterset.Cluster{a, b, c}) {
			t.Errorf("Dedupe = %v, %v; want c, a, b", contexts(got), err)
		}
	})
}

// TestIDCollision is the one home of the rule status and every syncing
// verb apply: two API servers may not share a cluster id; two contexts of
// one server may.
func TestIDCollision(t *testing.T) {
	east := &clusterset.Cluster{Context: "cluster1", ID: "east", IDSource: "ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)", Server: "https://a:6443"}
	same := &clusterset.Cluster{Context: "cluster1-admin", ID: "east", Server: "https://a:6443"}
	west := &clusterset.Cluster{Context: "cluster2", ID: "west", Server: "https://b:6443"}
	clash := &clusterset.Cluster{Context: "cluster2", ID: "east", IDSource: "the context name (no ClusterProperty CRD)", Server: "https://b:6443"}
	if err := clusterset.IDCollision(east, same); err != nil {
		t.Errorf("two contexts of one server: %v", err)
	}
	if err := clusterset.IDCollision(east, west); err != nil {
		t.Errorf("distinct ids: %v", err)
	}
	err := clusterset.IDCollision(east, clash)
	if err == nil {
		t.Fatal("two servers with id east accepted")
	}
	for _, want := range []string{`"cluster1"`, `"cluster2"`, `same cluster id "east"`, "cluster1: from ClusterProperty cluster.clusterset.k8s.io (about.k8s.io/v1beta1)",
		"cluster2: from the context name", "give one a ClusterProperty cluster.clusterset.k8s.io with a distinct id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
}

func contexts(cs []*clusterset.Cluster) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Context)
	}
	return out
}

func TestParseContextList(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    []string
		wantErr string
	}{
		{value: "c1", want: []string{"c1"}},
		{value: "c1,c2,c3", want: []string{"c1", "c2", "c3"}},
		{value: " c1 , c2 ", want: []string{"c1", "c2"}},
		{value: "c2,c1", want: []string{"c2", "c1"}},
		{value: "", wantErr: "--from is empty"},
		{value: "   ", wantErr: "--from is empty"},
		{value: "c1,,c2", wantErr: `--from "c1,,c2" has an empty entry`},
		{value: "c1,", wantErr: "has an empty entry"},
		{value: ",c1", wantErr: "has an empty entry"},
		{value: "c1, ,c2", wantErr: "has an empty entry"},
		{value: "c1,c2,c1", wantErr: `names context "c1" twice`},
		{value: "c1, c1", wantErr: `names context "c1" twice`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			got, err := clusterset.ParseContextList("from", tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ParseContextList(%q) = %v, %v; want an error with %q", tc.value, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseContextList(%q) = %q, %v; want %q", tc.value, got, err, tc.want)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	gr := schema.GroupResource{Resource: "services"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"wrapped", fmt.Errorf("listing: %w", refused), true},
		{"tied to a cluster", &clusterset.Error{Context: "c1", Err: refused}, true},
		{"dial error", &net.OpError{Op: "dial", Err: errors.New("no route to host")}, true},
		{"deadline", fmt.Errorf("reading: %w", context.DeadlineExceeded), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "list", 1), true},
		{"timeout", apierrors.NewTimeoutError("slow", 1), true},
		{"service unavailable", apierrors.NewServiceUnavailable("down"), true},
		{"forbidden", apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{"not found", apierrors.NewNotFound(gr, "x"), false},
		{"invalid", apierrors.NewBadRequest("bad"), false},
		{"plain", errors.New("boom"), false},
	} {
		if got := clusterset.Unreachable(tc.err); got != tc.want {
			t.Errorf("%s: Unreachable(%v) = %t, want %t", tc.name, tc.err, got, tc.want)
		}
	}
}

const kubeconfig = `apiVersion: v1
kind: Config
current-context: c1
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:1"}
- name: two
  cluster: {server: "https://127.0.0.1:2"}
users:
- name: u
  user: {token: secret}
contexts:
- name: c1
  context: {cluster: one, user: u, namespace: shop}
- name: c2
  context: {cluster: two, user: u}
- name: c2-again
  context: {cluster: two, user: u, namespace: other}
`

// Connect builds clients without contacting anything: both servers are
// closed ports.
func TestLoaderConnect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(true)
	cache := filepath.Join(dir, "cache")
	flags.KubeConfig, flags.CacheDir = &path, &cache
	var seen []string
	l := &clusterset.Loader{Flags: flags, OnConnect: func(c *clusterset.Cluster) { seen = append(seen, c.Context) }}

	if cur, err := l.CurrentContext(); err != nil || cur != "c1" {
		t.Errorf("CurrentContext = %q, %v; want c1", cur, err)
	}
	if all, err := l.Contexts(); err != nil || !slices.Equal(all, []string{"c1", "c2", "c2-again"}) {
		t.Errorf("Contexts = %q, %v", all, err)
	}
	for _, tc := range []struct{ context, server, namespace string }{
		{"c1", "https://127.0.0.1:1", "shop"},
		{"c2", "https://127.0.0.1:2", "default"},
		{"c2-again", "https://127.0.0.1:2", "other"},
	} {
		c, err := l.Connect(tc.context)
		if err != nil {
			t.Fatalf("Connect(%s): %v", tc.context, err)
		}
		if c.Context != tc.context || c.Server != tc.server || c.Namespace != tc.namespace {
			t.Errorf("Connect(%s) = context %q, server %q, namespace %q; want %q, %q", tc.context, c.Context, c.Server, c.Namespace, tc.server, tc.namespace)
		}
		if c.Kube == nil || c.Dynamic == nil || c.Discovery == nil || c.Requests == nil {
			t.Errorf("Connect(%s) left a client unset", tc.context)
		}
		if c.Requests.Reads()+c.Requests.Writes() != 0 {
			t.Errorf("Connect(%s) sent requests", tc.context)
		}
	}
	if !slices.Equal(seen, []string{"c1", "c2", "c2-again"}) {
		t.Errorf("OnConnect saw %v", seen)
	}
	_, err := l.Connect("nosuch")
	if err == nil || !strings.Contains(err.Error(), "nosuch: context not found in the kubeconfig (known contexts: c1, c2, c2-again)") {
		t.Errorf("Connect(nosuch) = %v", err)
	}
}
