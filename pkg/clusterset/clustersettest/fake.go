// Package clustersettest builds clusterset.Clusters on client-go's fake
// clientsets, for the unit tests of the packages that read and write
// through them (snapshot, apply, engine).
//
// The fakes alone do not behave like an API server where kubectl mcs relies
// on it: their server-side apply only patches objects that already exist,
// the typed and the dynamic client keep separate stores, dryRun is ignored
// and no cluster IP is allocated. A Fake adds exactly that, in reactors:
// apply creates or updates (the main resource keeps its status, the status
// subresource changes only the status), dryRun=All answers without storing,
// a ClusterIP Service gets an IP, and Services, EndpointSlices and
// Namespaces live in the typed client's store whichever client writes them.
// It is a narrow stand-in; the e2e tests run the real servers.
package clustersettest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/clusterset"
)

// ClusterPropertyGVR is the ClusterProperty resource in a version of
// about-api (v1beta1 today, v1alpha1 on older installs).
func ClusterPropertyGVR(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: clusterset.ClusterPropertyGroup, Version: version, Resource: clusterset.ClusterProperties}
}

// Fake is one fake cluster: Cluster is what the code under test gets, Kube
// and Dynamic are its clients' fakes, for reactors and recorded actions.
type Fake struct {
	Cluster   *clusterset.Cluster
	Kube      *kubefake.Clientset
	Dynamic   *dynamicfake.FakeDynamicClient
	Discovery *discoveryfake.FakeDiscovery

	// mcsVersions and propertyVersions are what discovery lists.
	mcsVersions, propertyVersions []string

	mu sync.Mutex
	// ClusterIPPrefix starts the cluster IPs allocated to Services
	// ("10.96.0." gives 10.96.0.1, 10.96.0.2, ...).
	ClusterIPPrefix string
	nextIP          int
	// Rules are what a SelfSubjectRulesReview answers, in any namespace
	// (default: everything allowed); RulesIncomplete marks the answer
	// incomplete.
	Rules           []authorizationv1.ResourceRule
	RulesIncomplete bool
	writes          []string
}

// New returns a cluster whose context and id are name, serving the MCS API
// as v1beta1, holding objects: typed core objects (Namespaces, Services,
// EndpointSlices), typed v1beta1 MCS objects (stored in the served
// version) or unstructured ones.
func New(name string, objects ...runtime.Object) *Fake {
	f := &Fake{
		Kube:            kubefake.NewClientset(),
		ClusterIPPrefix: "10.96.0.",
		Rules:           []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
	}
	listKinds := map[schema.GroupVersionResource]string{}
	for _, v := range []string{"v1alpha1", "v1beta1"} {
		listKinds[ClusterPropertyGVR(v)] = "ClusterPropertyList"
		listKinds[schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: v, Resource: clusterset.ServiceExports}] = "ServiceExportList"
		listKinds[schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: v, Resource: clusterset.ServiceImports}] = "ServiceImportList"
	}
	f.Dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	f.Discovery = f.Kube.Discovery().(*discoveryfake.FakeDiscovery)
	f.ServeMCS("v1beta1")
	f.Cluster = &clusterset.Cluster{
		Context: name, ID: name, IDSource: "the context name", Server: "https://" + name + ".test:6443",
		Kube: f.Kube, Dynamic: f.Dynamic, Discovery: memory.NewMemCacheClient(f.Discovery),
	}
	f.Dynamic.PrependReactor("patch", "*", f.apply)
	f.Dynamic.PrependReactor("delete", "*", f.delete)
	f.Kube.PrependReactor("create", "namespaces", f.createNamespace)
	f.Kube.PrependReactor("create", "selfsubjectrulesreviews", f.review)
	f.Add(objects...)
	return f
}

// CoreResources is what discovery lists besides the MCS API (a server
// always serves the core group).
var CoreResources = &metav1.APIResourceList{GroupVersion: "v1", APIResources: []metav1.APIResource{
	{Name: "namespaces", Kind: "Namespace"},
	{Name: "services", Namespaced: true, Kind: "Service"},
}}

// ServeMCS sets the versions of the MCS API discovery lists, the preferred
// one first (none: the CRDs are not installed). Call it before the cluster
// is used: discovery is cached.
func (f *Fake) ServeMCS(versions ...string) {
	f.mcsVersions = versions
	f.serve()
}

// ServeClusterProperty sets the versions of the ClusterProperty CRD
// (KEP-2149) discovery lists, the preferred one first (none by default: the
// CRD is not installed). Call it before the cluster is used.
func (f *Fake) ServeClusterProperty(versions ...string) {
	f.propertyVersions = versions
	f.serve()
}

func (f *Fake) serve() {
	if f.Cluster != nil {
		// What the cluster serves changed: its discovery cache forgets,
		// as a CRD install makes client-go's cache refresh.
		f.Cluster.Discovery.Invalidate()
	}
	f.Discovery.Resources = []*metav1.APIResourceList{CoreResources}
	for _, v := range f.mcsVersions {
		f.Discovery.Resources = append(f.Discovery.Resources, &metav1.APIResourceList{
			GroupVersion: clusterset.MCSGroup + "/" + v,
			APIResources: []metav1.APIResource{
				{Name: clusterset.ServiceExports, Namespaced: true, Kind: "ServiceExport"},
				{Name: clusterset.ServiceExports + "/status", Namespaced: true, Kind: "ServiceExport"},
				{Name: clusterset.ServiceImports, Namespaced: true, Kind: "ServiceImport"},
				{Name: clusterset.ServiceImports + "/status", Namespaced: true, Kind: "ServiceImport"},
			},
		})
	}
	for _, v := range f.propertyVersions {
		f.Discovery.Resources = append(f.Discovery.Resources, &metav1.APIResourceList{
			GroupVersion: clusterset.ClusterPropertyGroup + "/" + v,
			APIResources: []metav1.APIResource{{Name: clusterset.ClusterProperties, Kind: "ClusterProperty"}},
		})
	}
}

// Add stores objects as they are, without recording a write.
func (f *Fake) Add(objects ...runtime.Object) {
	for _, obj := range objects {
		var err error
		switch o := obj.(type) {
		case *mcsv1beta1.ServiceExport, *mcsv1beta1.ServiceImport:
			var u map[string]any
			if u, err = runtime.DefaultUnstructuredConverter.ToUnstructured(o); err == nil {
				kind := "ServiceExport"
				if _, ok := o.(*mcsv1beta1.ServiceImport); ok {
					kind = "ServiceImport"
				}
				obj := &unstructured.Unstructured{Object: u}
				obj.SetGroupVersionKind(schema.GroupVersionKind{Group: clusterset.MCSGroup, Version: f.servedVersion(), Kind: kind})
				err = f.Dynamic.Tracker().Add(obj)
			}
		case *unstructured.Unstructured:
			err = f.Dynamic.Tracker().Add(o)
		default:
			err = f.Kube.Tracker().Add(o)
		}
		if err != nil {
			panic(fmt.Sprintf("clustersettest: adding %T: %v", obj, err))
		}
	}
}

func (f *Fake) servedVersion() string {
	for _, l := range f.Discovery.Resources {
		if gv, _ := schema.ParseGroupVersion(l.GroupVersion); gv.Group == clusterset.MCSGroup {
			return gv.Version
		}
	}
	return "v1beta1"
}

// MCSResource is the GVR of an MCS resource in the version the fake serves.
func (f *Fake) MCSResource(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: clusterset.MCSGroup, Version: f.servedVersion(), Resource: resource}
}

// Writes lists the writes stored so far, in order: "patch services
// shop/amcs-web", "patch serviceimports/status shop/web", "delete
// endpointslices shop/x", "create namespaces /shop". Dry runs store nothing
// and are not listed.
func (f *Fake) Writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// Get returns a stored object as unstructured, or nil.
func (f *Fake) Get(gvr schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	u, err := f.get(gvr, namespace, name)
	if err != nil {
		return nil
	}
	return u
}

func (f *Fake) record(verb string, gvr schema.GroupVersionResource, subresource, namespace, name string) {
	resource := gvr.Resource
	if subresource != "" {
		resource += "/" + subresource
	}
	f.mu.Lock()
	f.writes = append(f.writes, fmt.Sprintf("%s %s %s/%s", verb, resource, namespace, name))
	f.mu.Unlock()
}

// typed says whether gvr lives in the typed client's store.
func typed(gvr schema.GroupVersionResource) bool {
	return gvr.Group == "" || gvr.Group == "discovery.k8s.io"
}

func (f *Fake) tracker(gvr schema.GroupVersionResource) k8stesting.ObjectTracker {
	if typed(gvr) {
		return f.Kube.Tracker()
	}
	return f.Dynamic.Tracker()
}

func (f *Fake) get(gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	obj, err := f.tracker(gvr).Get(gvr, namespace, name)
	if err != nil {
		return nil, err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy(), nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	gvks, _, err := kubescheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, err
	}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

func (f *Fake) store(gvr schema.GroupVersionResource, u *unstructured.Unstructured, exists bool) error {
	var obj runtime.Object = u
	if typed(gvr) {
		t, err := kubescheme.Scheme.New(u.GroupVersionKind())
		if err != nil {
			return err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			return err
		}
		obj = t
	}
	if exists {
		return f.tracker(gvr).Update(gvr, obj, u.GetNamespace())
	}
	return f.tracker(gvr).Create(gvr, obj, u.GetNamespace())
}

func dryRun(opts []string) bool { return slices.Contains(opts, metav1.DryRunAll) }

// apply is server-side apply as far as kubectl mcs depends on it.
func (f *Fake) apply(action k8stesting.Action) (bool, runtime.Object, error) {
	p, ok := action.(k8stesting.PatchActionImpl)
	if !ok || p.GetPatchType() != types.ApplyPatchType {
		return false, nil, nil
	}
	gvr, ns, name, sub := p.GetResource(), p.GetNamespace(), p.GetName(), p.GetSubresource()
	var intent map[string]any
	if err := json.Unmarshal(p.GetPatch(), &intent); err != nil {
		return true, nil, apierrors.NewBadRequest(err.Error())
	}
	existing, err := f.get(gvr, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return true, nil, err
	}
	var out *unstructured.Unstructured
	switch sub {
	case "status":
		if existing == nil {
			return true, nil, err
		}
		out = existing
		out.Object["status"] = intent["status"]
	case "":
		out = &unstructured.Unstructured{Object: intent}
		out.SetName(name)
		out.SetNamespace(ns)
		// The status is a subresource: an apply of the object keeps it.
		delete(out.Object, "status")
		if existing != nil {
			if status, ok := existing.Object["status"]; ok {
				out.Object["status"] = status
			}
			out.SetUID(existing.GetUID())
			out.SetCreationTimestamp(existing.GetCreationTimestamp())
		} else {
			out.SetUID(types.UID(fmt.Sprintf("uid-%s-%s-%s", gvr.Resource, ns, name)))
		}
		if gvr.Group == "" && gvr.Resource == "services" {
			f.defaultService(out, existing)
		}
	default:
		return false, nil, nil
	}
	if dryRun(p.PatchOptions.DryRun) {
		return true, out, nil
	}
	if err := f.store(gvr, out, existing != nil); err != nil {
		return true, nil, err
	}
	f.record("patch", gvr, sub, ns, name)
	stored, err := f.get(gvr, ns, name)
	return true, stored, err
}

// defaultService keeps the allocated cluster IP of an existing Service, or
// allocates one for a new ClusterIP Service, as the API server does.
func (f *Fake) defaultService(out, existing *unstructured.Unstructured) {
	ip, _, _ := unstructured.NestedString(out.Object, "spec", "clusterIP")
	if ip != "" {
		return
	}
	if existing != nil {
		for _, field := range []string{"clusterIP", "clusterIPs", "ipFamilies"} {
			if v, ok, _ := unstructured.NestedFieldCopy(existing.Object, "spec", field); ok {
				_ = unstructured.SetNestedField(out.Object, v, "spec", field)
			}
		}
		return
	}
	f.mu.Lock()
	f.nextIP++
	ip = fmt.Sprintf("%s%d", f.ClusterIPPrefix, f.nextIP)
	f.mu.Unlock()
	_ = unstructured.SetNestedField(out.Object, ip, "spec", "clusterIP")
	_ = unstructured.SetNestedStringSlice(out.Object, []string{ip}, "spec", "clusterIPs")
	_ = unstructured.SetNestedStringSlice(out.Object, []string{string(corev1.IPv4Protocol)}, "spec", "ipFamilies")
}

func (f *Fake) delete(action k8stesting.Action) (bool, runtime.Object, error) {
	d, ok := action.(k8stesting.DeleteActionImpl)
	if !ok {
		return false, nil, nil
	}
	gvr, ns, name := d.GetResource(), d.GetNamespace(), d.GetName()
	if _, err := f.get(gvr, ns, name); err != nil {
		return true, nil, err
	}
	if dryRun(d.DeleteOptions.DryRun) {
		return true, nil, nil
	}
	if err := f.tracker(gvr).Delete(gvr, ns, name); err != nil {
		return true, nil, err
	}
	f.record("delete", gvr, "", ns, name)
	return true, nil, nil
}

func (f *Fake) createNamespace(action k8stesting.Action) (bool, runtime.Object, error) {
	c := action.(k8stesting.CreateActionImpl)
	ns := c.GetObject().(*corev1.Namespace)
	if dryRun(c.CreateOptions.DryRun) {
		return true, ns, nil
	}
	if err := f.Kube.Tracker().Create(c.GetResource(), ns, ""); err != nil {
		return true, nil, err
	}
	f.record("create", c.GetResource(), "", "", ns.Name)
	return true, ns, nil
}

// review answers a SelfSubjectRulesReview with Rules, in any namespace.
func (f *Fake) review(action k8stesting.Action) (bool, runtime.Object, error) {
	in := action.(k8stesting.CreateActionImpl).GetObject().(*authorizationv1.SelfSubjectRulesReview)
	out := in.DeepCopy()
	f.mu.Lock()
	out.Status = authorizationv1.SubjectRulesReviewStatus{ResourceRules: slices.Clone(f.Rules), Incomplete: f.RulesIncomplete}
	f.mu.Unlock()
	return true, out, nil
}

// Reviews returns the namespaces of the SelfSubjectRulesReviews sent so far,
// in order.
func (f *Fake) Reviews() []string {
	var out []string
	for _, a := range f.Kube.Actions() {
		if c, ok := a.(k8stesting.CreateActionImpl); ok && a.GetResource().Resource == "selfsubjectrulesreviews" {
			out = append(out, c.GetObject().(*authorizationv1.SelfSubjectRulesReview).Spec.Namespace)
		}
	}
	return out
}

// Clusters indexes the fakes' clusters by id, as apply.Executor takes them.
func Clusters(fakes ...*Fake) map[string]*clusterset.Cluster {
	out := map[string]*clusterset.Cluster{}
	for _, f := range fakes {
		out[f.Cluster.ID] = f.Cluster
	}
	return out
}
