package kube

import (
	"google.golang.org/protobuf/proto"
	metav1alpha1 "istio.io/api/meta/v1alpha1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minimesh/minimesh/mesh"
)

// istioKinds are the Istio kinds read through informers, with their API
// group and the resource name of their status subresource.
var istioKinds = map[string]struct{ group, resource string }{
	kindVirtualService:     {"networking.istio.io", "virtualservices"},
	kindDestinationRule:    {"networking.istio.io", "destinationrules"},
	kindServiceEntry:       {"networking.istio.io", "serviceentries"},
	kindWorkloadEntry:      {"networking.istio.io", "workloadentries"},
	kindPeerAuthentication: {"security.istio.io", "peerauthentications"},
	kindSidecar:            {"networking.istio.io", "sidecars"},
}

// istioObject is an Istio object as the typed client returns it: its
// metadata, its spec (the istio.io/api message the file source decodes
// into too) and its status conditions.
type istioObject struct {
	meta       metav1.Object
	spec       proto.Message
	conditions []*metav1alpha1.IstioCondition
}

// asIstioObject unpacks an object of one of istioKinds. The spec and
// conditions point into the cached object: read them, never change them.
func asIstioObject(obj any) (istioObject, bool) {
	switch o := obj.(type) {
	case *networkingv1.VirtualService:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	case *networkingv1.DestinationRule:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	case *networkingv1.ServiceEntry:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	case *networkingv1.WorkloadEntry:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	case *securityv1.PeerAuthentication:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	case *networkingv1.Sidecar:
		return istioObject{o, &o.Spec, o.Status.GetConditions()}, true
	}
	return istioObject{}, false
}

// meshObject is the object handed to mesh.Build: exactly what the file
// source would have decoded from the same YAML.
func (o istioObject) meshObject(kind string) mesh.Object {
	return mesh.Object{Ref: ref(kind, o.meta.GetNamespace(), o.meta.GetName()), Spec: o.spec}
}
