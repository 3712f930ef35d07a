package dns

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
