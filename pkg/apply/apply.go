// Package apply writes to one cluster the way kubectl mcs promises: server-
// side apply under one field manager, only what changes, and the three
// dry-run modes of kubectl (none, client: nothing sent, server: sent with
// dryRun=All). It reports each object the kubectl way ("kind/name created").
package apply

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Action is what happened (or would happen) to an object.
type Action string

// Actions, worded as kubectl prints them.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	// Replaced: deleted and created again, for a change the API cannot make
	// in place.
	Replaced Action = "replaced"
)

// Result is one line of a verb's report.
type Result struct {
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Group     string `json:"group,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Action    Action `json:"action"`
	// Subject names what part was written when it is not the object itself
	// ("status").
	Subject string `json:"subject,omitempty"`
}

// String prints the result as kubectl does: "serviceimport.multicluster.x-k8s.io/mysql created".
func (r Result) String() string {
	return r.QualifiedName() + " " + string(r.Action)
}

// QualifiedName is "kind.group/name", lower case, as kubectl prints it.
func (r Result) QualifiedName() string {
	kind := strings.ToLower(r.Kind)
	if r.Group != "" {
		kind += "." + r.Group
	}
	name := kind + "/" + r.Name
	if r.Subject != "" {
		name += " " + r.Subject
	}
	return name
}

// DryRunSuffix is what kubectl appends to a result line in each dry-run mode.
func DryRunSuffix(mode cmdutil.DryRunStrategy) string {
	switch mode {
	case cmdutil.DryRunClient:
		return " (dry run)"
	case cmdutil.DryRunServer:
		return " (server dry run)"
	}
	return ""
}

// Writer writes objects to one cluster.
type Writer struct {
	Client       dynamic.Interface
	FieldManager string
	DryRun       cmdutil.DryRunStrategy
}

func (w *Writer) applyOptions() metav1.ApplyOptions {
	// Force: ownership was checked before anything is written (objects in
	// the way that we do not manage are refused up front), so a field held
	// by another manager is one we adopt on purpose, e.g. the hand-made
	// ServiceImport of the seed.
	opts := metav1.ApplyOptions{FieldManager: w.FieldManager, Force: true}
	if w.DryRun == cmdutil.DryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return opts
}

// Apply server-side applies obj. With client dry-run it sends nothing and
// returns obj as given.
func (w *Writer) Apply(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if w.DryRun == cmdutil.DryRunClient {
		return obj, nil
	}
	var out *unstructured.Unstructured
	err := retryRaces(func() (err error) {
		out, err = w.resource(gvr, obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, w.applyOptions())
		return err
	})
	return out, err
}

// retryRaces retries a write that lost a race with another writer: two
// imports creating the same object at once (one gets AlreadyExists or a
// 409 Conflict). Server-side apply carries no resourceVersion, so the
// retry simply applies the same intent on top of the winner's.
func retryRaces(write func() error) error {
	return retry.OnError(retry.DefaultRetry, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, write)
}

// ApplyStatus server-side applies obj's status subresource.
func (w *Writer) ApplyStatus(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if w.DryRun == cmdutil.DryRunClient {
		return obj, nil
	}
	var out *unstructured.Unstructured
	err := retryRaces(func() (err error) {
		out, err = w.resource(gvr, obj.GetNamespace()).ApplyStatus(ctx, obj.GetName(), obj, w.applyOptions())
		return err
	})
	return out, err
}

// Delete deletes an object, only if it still has the given UID (when set),
// so an object re-created by someone else since it was read survives.
func (w *Writer) Delete(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, uid string) error {
	if w.DryRun == cmdutil.DryRunClient {
		return nil
	}
	opts := metav1.DeleteOptions{}
	if uid != "" {
		u := types.UID(uid)
		opts.Preconditions = &metav1.Preconditions{UID: &u}
	}
	if w.DryRun == cmdutil.DryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return w.resource(gvr, namespace).Delete(ctx, name, opts)
}

func (w *Writer) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return w.Client.Resource(gvr)
	}
	return w.Client.Resource(gvr).Namespace(namespace)
}

// ToUnstructured converts a typed object for the dynamic client, setting
// apiVersion and kind; MCS objects are written in the version the cluster
// serves, which may differ from the Go type's (their schemas are the same).
func ToUnstructured(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	// Server-managed fields have no place in an apply request.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u.Object, "metadata", "uid")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(u.Object, "metadata", "generation")
	return u, nil
}

// FromUnstructured converts a dynamic-client object into a typed one.
func FromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

func metaOf(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
