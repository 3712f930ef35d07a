package status

import (
	"context"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/reconcile"
	"github.com/kubectl-mcs/kubectl-mcs/pkg/snapshot"
)

// ClusterState is what status read from one cluster: its exports side
// (Source) and its imports side (Consumer), or the error that kept it
// from being read.
type ClusterState struct {
	Cluster  *clusterset.Cluster
	Source   reconcile.Source
	Consumer reconcile.Consumer
	Err      error
}

// Read connects every context and reads it, in parallel; contexts that are
// the same API server are read once, and a failure stays with its cluster.
func Read(ctx context.Context, loader *clusterset.Loader, contexts []string, scope snapshot.Scope) []*ClusterState {
	var states []*ClusterState
	var clusters []*clusterset.Cluster
	for _, m := range loader.ConnectEach(ctx, contexts) {
		switch {
		case m.Err != nil:
			states = append(states, &ClusterState{Cluster: &clusterset.Cluster{Context: m.Context}, Err: m.Err})
		case !slices.Contains(clusters, m.Cluster):
			states = append(states, &ClusterState{Cluster: m.Cluster})
			clusters = append(clusters, m.Cluster)
		}
	}
	errs := clusterset.ForEach(ctx, clusters, func(ctx context.Context, c *clusterset.Cluster) error {
		st := states[slices.IndexFunc(states, func(s *ClusterState) bool { return s.Cluster == c })]
		// Both reads at once: one round trip for the cluster.
		var srcErr error
		read := make(chan struct{})
		go func() {
			defer close(read)
			st.Source, srcErr = snapshot.ReadSource(ctx, c, scope)
		}()
		var err error
		st.Consumer, err = snapshot.ReadConsumer(ctx, c, scope)
		<-read
		if srcErr != nil {
			return srcErr
		}
		return err
	})
	for i, c := range clusters {
		if errs[i] != nil {
			states[slices.IndexFunc(states, func(s *ClusterState) bool { return s.Cluster == c })].Err = errs[i]
		}
	}
	// Two reachable clusters with one id would be indistinguishable in DNS.
	byID := map[string]*ClusterState{}
	for _, st := range states {
		if st.Err != nil || st.Cluster.ID == "" {
			continue
		}
		if prev, ok := byID[st.Cluster.ID]; ok {
			st.Err = clusterset.IDCollision(prev.Cluster, st.Cluster)
			continue
		}
		byID[st.Cluster.ID] = st
	}
	return states
}

// ServicesOfDerived maps a named derived Service (amcs-mysql, as a k9s
// shortcut passes from the Services view of a consumer) to the service it
// carries, through its multicluster.kubernetes.io/service-name label in the
// current context; other names, and any name that cannot be looked up, stay
// as given. Only names with the derived prefix cost a request.
func ServicesOfDerived(ctx context.Context, loader *clusterset.Loader, services []string, namespace string) []string {
	out := slices.Clone(services)
	var c *clusterset.Cluster
	for i, name := range out {
		if !strings.HasPrefix(name, reconcile.DerivedServiceName("")) || namespace == "" {
			continue
		}
		if c == nil {
			current, err := loader.CurrentContext()
			if err != nil {
				return out
			}
			if c, err = loader.Connect(current); err != nil {
				return out
			}
		}
		svc, err := c.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && svc.Labels[mcsv1beta1.LabelServiceName] != "" {
			out[i] = svc.Labels[mcsv1beta1.LabelServiceName]
		}
	}
	return out
}
