package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minimesh/minimesh/mesh"
)

// origin is the cluster object a mesh object was made from: what an Event
// or a status condition about it points to.
type origin struct {
	ref        corev1.ObjectReference
	generation int64
	istio      *istioObject // nil for Services and Pods
}

// contents is the cluster's content, converted for mesh.Build.
type contents struct {
	objs []mesh.Object
	// diags are the warnings about the Istio objects as they are (fields
	// minimesh does not implement), as the file source reports them.
	diags []mesh.Diagnostic
	// origins are keyed by the name diagnostics give an object,
	// "VirtualService default/reviews".
	origins map[string]origin
}

// collect converts everything in the caches. Objects in a namespace that
// is being deleted contribute nothing.
func (w *Watcher) collect() contents {
	c := contents{origins: map[string]origin{}}
	terminating := w.terminatingNamespaces()
	add := func(obj mesh.Object, o origin) {
		c.objs = append(c.objs, obj)
		c.origins[objectName(obj.Ref)] = o
	}
	for _, x := range w.caches.list(kindPod) {
		pod := x.(*corev1.Pod)
		if obj, ok := podObject(pod); ok && !terminating[pod.Namespace] {
			add(obj, origin{ref: objectRef(kindPod, "v1", pod), generation: pod.Generation})
		}
	}
	for _, x := range w.caches.list(kindService) {
		svc := x.(*corev1.Service)
		if terminating[svc.Namespace] {
			continue
		}
		endpointSlices := w.caches.endpointSlices(svc.Namespace, svc.Name)
		if obj, ok := serviceObject(svc, endpointSlices, w.pod, w.cfg.DomainSuffix); ok {
			add(obj, origin{ref: objectRef(kindService, "v1", svc), generation: svc.Generation})
		}
	}
	for kind, k := range istioKinds {
		for _, x := range w.caches.list(kind) {
			o, ok := asIstioObject(x)
			if !ok || terminating[o.meta.GetNamespace()] {
				continue
			}
			obj := o.meshObject(kind)
			c.diags = append(c.diags, mesh.UnsupportedFields(obj)...)
			add(obj, origin{ref: objectRef(kind, k.group+"/v1", o.meta), generation: o.meta.GetGeneration(), istio: &o})
		}
	}
	return c
}

// terminatingNamespaces returns the namespaces being deleted.
func (w *Watcher) terminatingNamespaces() map[string]bool {
	out := map[string]bool{}
	for _, x := range w.caches.list(kindNamespace) {
		if ns := x.(*corev1.Namespace); ns.DeletionTimestamp != nil {
			out[ns.Name] = true
		}
	}
	return out
}

// pod looks a pod up in the cache.
func (w *Watcher) pod(namespace, name string) (*corev1.Pod, bool) {
	x, ok := w.caches.get(kindPod, namespace, name)
	if !ok {
		return nil, false
	}
	pod, ok := x.(*corev1.Pod)
	return pod, ok
}

// objectRef points an Event at an object.
func objectRef(kind, apiVersion string, m metav1.Object) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind:            kind,
		APIVersion:      apiVersion,
		Namespace:       m.GetNamespace(),
		Name:            m.GetName(),
		UID:             m.GetUID(),
		ResourceVersion: m.GetResourceVersion(),
	}
}

// objectName names an object the way mesh diagnostics do:
// "VirtualService default/reviews".
func objectName(r mesh.Ref) string {
	return r.Kind + " " + r.Namespace + "/" + r.Name
}
