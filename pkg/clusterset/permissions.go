package clusterset

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Permission is one thing a verb is about to do in a namespace.
type Permission struct {
	Verb     string
	Group    string
	Resource string // may name a subresource: "serviceimports/status"
}

func (p Permission) String() string {
	if p.Group == "" {
		return p.Verb + " " + p.Resource
	}
	return p.Verb + " " + p.Resource + "." + p.Group
}

// CheckPermissions asks the cluster, with one SelfSubjectRulesReview per
// namespace (sent together), whether the current user may do all of perms, so that a verb
// missing one permission fails before its first write rather than half-way.
// The error lists every missing permission with its namespace and the fix.
// Where the cluster's authorizer cannot list rules (the review is
// incomplete), the check stays silent and the API server has the last word.
func (c *Cluster) CheckPermissions(ctx context.Context, perms map[string][]Permission) error {
	namespaces := make([]string, 0, len(perms))
	for ns := range perms {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	// One review per namespace, all at once: one round trip.
	reviews := make([]*authorizationv1.SelfSubjectRulesReview, len(namespaces))
	errs := make([]error, len(namespaces))
	var wg sync.WaitGroup
	for n, ns := range namespaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reviews[n], errs[n] = c.Kube.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns},
			}, metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	var missing []string
	for n, ns := range namespaces {
		if err := errs[n]; err != nil {
			return c.Errorf("checking permissions in namespace %s: %w", ns, err)
		}
		review := reviews[n]
		if review.Status.Incomplete {
			continue
		}
		seen := map[Permission]bool{}
		for _, p := range perms[ns] {
			if seen[p] || allowed(review.Status.ResourceRules, p) {
				continue
			}
			seen[p] = true
			missing = append(missing, fmt.Sprintf("%s in namespace %s", p, ns))
		}
	}
	if len(missing) > 0 {
		return c.Errorf("forbidden: the user of this context may not %s; nothing was written "+
			"(bind the kubectl-mcs ClusterRoles of deploy/rbac/, or ask an admin for these permissions)", strings.Join(missing, ", "))
	}
	return nil
}

func allowed(rules []authorizationv1.ResourceRule, p Permission) bool {
	return slices.ContainsFunc(rules, func(r authorizationv1.ResourceRule) bool {
		return len(r.ResourceNames) == 0 && matches(r.Verbs, p.Verb) && matches(r.APIGroups, p.Group) && matches(r.Resources, p.Resource)
	})
}

func matches(values []string, want string) bool {
	return slices.Contains(values, "*") || slices.Contains(values, want) ||
		// "serviceimports/*" grants every subresource.
		(strings.Contains(want, "/") && slices.Contains(values, want[:strings.Index(want, "/")]+"/*"))
}
