package clusterset_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/apply"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// A bound's worth of requests, sent at once through a connected cluster's
// own clients, all reach the API server before any is answered: neither
// the client-side rate limiter nor the transport holds one back. The
// server answers none until all are there, so a limiter that let fewer
// through at once would leave this test waiting (it fails after a guard
// time, which no correct run comes near).
func TestClientSideLimiterIsNotTheBottleneck(t *testing.T) {
	const n = apply.DefaultMaxWritesInFlight
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apiVersion":"v1","kind":"ServiceList","metadata":{},"items":[]}`)
	}))
	defer server.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	config := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: %q}\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n", server.URL)
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	cache := filepath.Join(dir, "cache")
	flags.KubeConfig, flags.CacheDir = &path, &cache
	c, err := (&clusterset.Loader{Flags: flags}).Connect("c")
	if err != nil {
		t.Fatal(err)
	}

	// The limiters themselves: a bound's worth of tokens at once, for the
	// typed clients (one limiter shared by every group) and the dynamic
	// client (built from Config).
	for name, limiter := range map[string]interface{ TryAccept() bool }{
		"kubernetes": c.Kube.CoreV1().RESTClient().(*rest.RESTClient).GetRateLimiter(),
	} {
		for i := range n {
			if !limiter.TryAccept() {
				t.Fatalf("%s client: request %d of %d held by the rate limiter (QPS %v, burst %d)", name, i+1, n, c.Config.QPS, c.Config.Burst)
			}
		}
	}
	if c.Config.Burst < apply.MaxWritesInFlightLimit {
		t.Errorf("burst %d is below the largest --max-writes-in-flight (%d)", c.Config.Burst, apply.MaxWritesInFlightLimit)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, n)
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	for i := range n {
		go func() {
			var err error
			if i%2 == 0 {
				_, err = c.Kube.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
			} else {
				_, err = c.Dynamic.Resource(gvr).Namespace("shop").List(ctx, metav1.ListOptions{})
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a request failed before all %d were in flight together: %v", n, err)
		}
	}
	if got := c.Requests.Reads(); got != n {
		t.Errorf("request counter saw %d reads, want %d", got, n)
	}
}
