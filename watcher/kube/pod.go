package kube

import (
	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"

	"github.com/minimesh/minimesh/mesh"
)

// podObject converts a Pod into a workload, built as the WorkloadEntry it
// stands for: its IP, labels and service account. Its proxy finds it by
// the node ID "<pod>.<namespace>"; whether it has a sidecar is in its
// labels (security.istio.io/tlsMode: istio, set by the injector). A pod
// without an IP yet, or finished (its IP may already belong to another
// pod), is left out.
func podObject(pod *corev1.Pod) (mesh.Object, bool) {
	if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return mesh.Object{}, false
	}
	spec := &networking.WorkloadEntry{
		Address:        pod.Status.PodIP,
		Labels:         pod.Labels,
		ServiceAccount: serviceAccount(pod),
	}
	return mesh.Object{Ref: ref(kindPod, pod.Namespace, pod.Name), Spec: spec}, true
}
