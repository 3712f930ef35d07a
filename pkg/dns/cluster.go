package dns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"
)

// Where a cluster keeps its CoreDNS (the kubeadm and most distributions'
// layout): the Corefile in a ConfigMap, the server in a Deployment.
const (
	CoreDNSNamespace  = "kube-system"
	CoreDNSConfigMap  = "coredns"
	CoreDNSDeployment = "coredns"
)

// CoreDNSVersion reads the version of CoreDNS from the image tag of
// Deployment kube-system/coredns; an error says why it cannot tell.
func CoreDNSVersion(ctx context.Context, kube kubernetes.Interface) (*version.Version, error) {
	d, err := kube.AppsV1().Deployments(CoreDNSNamespace).Get(ctx, CoreDNSDeployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cannot tell the CoreDNS version (Deployment %s/%s: %v)", CoreDNSNamespace, CoreDNSDeployment, err)
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if i := strings.LastIndex(ctr.Image, ":"); i >= 0 && strings.Contains(ctr.Image, "coredns") {
			v, err := version.ParseGeneric(strings.TrimPrefix(ctr.Image[i+1:], "v"))
			if err == nil {
				return v, nil
			}
		}
	}
	return nil, fmt.Errorf("cannot tell the CoreDNS version from the images of Deployment %s/%s", CoreDNSNamespace, CoreDNSDeployment)
}

// CoreDNS is a cluster's CoreDNS as read for a check or a patch: the
// ConfigMap holding the Corefile, the Corefile's check, and the version of
// the Deployment's image (nil, with VersionErr saying why, when it cannot
// be told).
type CoreDNS struct {
	ConfigMap  *corev1.ConfigMap
	Check      Report
	Version    *version.Version
	VersionErr error
}

// Corefile is the Corefile as read.
func (c *CoreDNS) Corefile() string { return c.ConfigMap.Data["Corefile"] }

// TooOld reports whether the version is known and lacks the kubernetes
// plugin's multicluster option, so it would refuse a patched Corefile.
func (c *CoreDNS) TooOld() bool {
	return c.Version != nil && c.Version.LessThan(version.MustParseGeneric(MinCoreDNSVersion))
}

// ReadCoreDNS reads the Corefile and the version together: one round trip.
func ReadCoreDNS(ctx context.Context, kube kubernetes.Interface) (*CoreDNS, error) {
	out := &CoreDNS{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		out.Version, out.VersionErr = CoreDNSVersion(ctx, kube)
	}()
	cm, err := kube.CoreV1().ConfigMaps(CoreDNSNamespace).Get(ctx, CoreDNSConfigMap, metav1.GetOptions{})
	<-read
	if apierrors.IsNotFound(err) {
		return nil, ErrNoCoreDNS
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", CoreDNSNamespace, CoreDNSConfigMap, err)
	}
	out.ConfigMap = cm
	out.Check = CheckCorefile(out.Corefile())
	return out, nil
}

// ErrNoCoreDNS is ReadCoreDNS's answer for a cluster without the
// ConfigMap.
var ErrNoCoreDNS = fmt.Errorf("ConfigMap %s/%s not found: this cluster's DNS is not CoreDNS set up the usual way; configure its DNS to serve clusterset.local by hand, or use <host>.amcs-<svc>.<ns>.svc.cluster.local names, which any cluster DNS serves",
	CoreDNSNamespace, CoreDNSConfigMap)

// ErrCorefileChanged is WriteCorefile's answer when the ConfigMap changed
// since it was read.
var ErrCorefileChanged = errors.New("changed while it was being patched; run the command again")

// WriteCorefile replaces the Corefile that was read. The read's
// resourceVersion makes it fail (ErrCorefileChanged) rather than overwrite
// an edit made since.
func (c *CoreDNS) WriteCorefile(ctx context.Context, kube kubernetes.Interface, corefile string, serverDryRun bool) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": c.ConfigMap.ResourceVersion},
		"data":     map[string]string{"Corefile": corefile},
	})
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "kubectl-mcs"}
	if serverDryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = kube.CoreV1().ConfigMaps(CoreDNSNamespace).Patch(ctx, CoreDNSConfigMap, types.MergePatchType, body, opts)
	switch {
	case apierrors.IsConflict(err):
		return fmt.Errorf("ConfigMap %s/%s %w", CoreDNSNamespace, CoreDNSConfigMap, ErrCorefileChanged)
	case err != nil:
		return fmt.Errorf("patching ConfigMap %s/%s: %w", CoreDNSNamespace, CoreDNSConfigMap, err)
	}
	return nil
}
