package clusterset_test

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

type okTransport struct{ sent int }

func (o *okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	o.sent++
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("{}"))}, nil
}

func TestRequestCounter(t *testing.T) {
	type counts struct{ reads, writes, leases int64 }
	for _, tc := range []struct {
		method, path string
		want         counts
	}{
		{"GET", "/api/v1/namespaces/shop/services", counts{reads: 1}},
		{"GET", "/apis/multicluster.x-k8s.io/v1beta1/serviceexports?watch=true", counts{reads: 1}},
		{"HEAD", "/api/v1/namespaces/shop", counts{reads: 1}},
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", counts{reads: 1}},
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", counts{reads: 1}},
		{"PATCH", "/api/v1/namespaces/shop/services/amcs-web", counts{writes: 1}},
		{"PATCH", "/apis/multicluster.x-k8s.io/v1beta1/namespaces/shop/serviceimports/web/status", counts{writes: 1}},
		{"POST", "/api/v1/namespaces", counts{writes: 1}},
		{"DELETE", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/x", counts{writes: 1}},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubectl-mcs", counts{leases: 1}},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubectl-mcs", counts{leases: 1}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var r clusterset.RequestCounter
			next := &okTransport{}
			req, err := http.NewRequest(tc.method, "https://c1.test:6443"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := r.Wrap(next).RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK || next.sent != 1 {
				t.Fatalf("request not passed on: %v, %d sent", err, next.sent)
			}
			if got := (counts{r.Reads(), r.Writes(), r.Leases()}); got != tc.want {
				t.Errorf("counted %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRequestCounterRepeatedWrites(t *testing.T) {
	var r clusterset.RequestCounter
	rt := r.Wrap(&okTransport{})
	send := func(method, path string) {
		t.Helper()
		req, err := http.NewRequest(method, "https://c1.test:6443"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	const svc = "/api/v1/namespaces/shop/services/amcs-web"
	const si = "/apis/multicluster.x-k8s.io/v1beta1/namespaces/shop/serviceimports/web"
	send("PATCH", svc)
	send("PATCH", si)
	send("PATCH", si+"/status") // the status is another object path
	send("GET", svc)            // reads are not writes
	send("GET", svc)
	send("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l") // nor leases
	send("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l")
	if got := r.RepeatedWrites(); len(got) != 0 {
		t.Errorf("RepeatedWrites = %v before any repeat", got)
	}
	send("PATCH", si)
	send("PATCH", si)
	send("DELETE", svc) // another method on the same path
	want := map[string]int{"PATCH " + si: 3}
	if got := r.RepeatedWrites(); !maps.Equal(got, want) {
		t.Errorf("RepeatedWrites = %v, want %v", got, want)
	}
	if r.Writes() != 6 || r.Reads() != 2 || r.Leases() != 2 {
		t.Errorf("reads %d, writes %d, leases %d; want 2, 6, 2", r.Reads(), r.Writes(), r.Leases())
	}
}
