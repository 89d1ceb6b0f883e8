package kube

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// reviewsService has one port of each way to say a protocol, and a UDP
// port that sidecars cannot carry.
func reviewsService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "shop"},
		Spec: corev1.ServiceSpec{
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10", "fd00::10"},
			Ports: []corev1.ServicePort{
				{Name: "web", Port: 80, TargetPort: intstr.FromInt32(8080), AppProtocol: ptr("http")},
				{Name: "grpc-api", Port: 9090, TargetPort: intstr.FromString("api")},
				{Name: "h2", Port: 81, AppProtocol: ptr("kubernetes.io/h2c")},
				{Name: "metrics", Port: 9100, AppProtocol: ptr("prometheus.io/whatever")},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

func TestServicePortsFollowIstioConventions(t *testing.T) {
	got, names := servicePorts(reviewsService().Spec.Ports)
	want := []*networking.ServicePort{
		{Number: 80, Name: "web", Protocol: "HTTP", TargetPort: 8080},
		{Number: 9090, Name: "grpc-api", Protocol: "GRPC"}, // named target port: the slices say the number
		{Number: 81, Name: "h2", Protocol: "HTTP2"},
		{Number: 9100, Name: "metrics", Protocol: "TCP"},
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if _, ok := names["dns"]; ok {
		t.Errorf("the UDP port is mapped: %v", names)
	}
}

func TestUnnamedPortGetsAName(t *testing.T) {
	got, names := servicePorts([]corev1.ServicePort{{Port: 5432}})
	if len(got) != 1 || got[0].GetName() != "port-5432" || got[0].GetProtocol() != "TCP" || names[""] != "port-5432" {
		t.Errorf("ports = %v, names = %v; want one TCP port named port-5432, the slices' \"\" mapped to it", got, names)
	}
}

// endpoint is an EndpointSlice endpoint of a pod.
func endpoint(ip, pod string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod},
	}
}

func TestServiceObject(t *testing.T) {
	pods := map[string]*corev1.Pod{
		"reviews-v1": {
			ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1", Namespace: "shop",
				Labels: map[string]string{"app": "reviews", "version": "v1"}},
			Spec: corev1.PodSpec{ServiceAccountName: "reviews"},
		},
		"reviews-v2": {
			ObjectMeta: metav1.ObjectMeta{Name: "reviews-v2", Namespace: "shop",
				Labels: map[string]string{"app": "reviews", "version": "v2"}},
		},
	}
	lookup := func(ns, name string) (*corev1.Pod, bool) {
		p, ok := pods[name]
		return p, ok && ns == "shop"
	}
	slices := []*discoveryv1.EndpointSlice{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "reviews-b", Namespace: "shop"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{
				{Name: ptr("web"), Port: ptr[int32](8080)},
				{Name: ptr("grpc-api"), Port: ptr[int32](9091)},
				{Name: ptr("dns"), Port: ptr[int32](53), Protocol: ptr(corev1.ProtocolUDP)},
			},
			Endpoints: []discoveryv1.Endpoint{
				endpoint("10.1.0.2", "reviews-v2", nil),       // no condition: ready
				endpoint("10.1.0.3", "gone", ptr(false)),      // not ready: out
				endpoint("10.1.0.1", "reviews-v1", ptr(true)), // ready
				endpoint("10.1.0.9", "not-a-pod-yet", nil),    // ready, pod unknown
			},
		},
		{
			// The same endpoint again in another slice, as during a
			// migration: served once.
			ObjectMeta:  metav1.ObjectMeta{Name: "reviews-a", Namespace: "shop"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("web"), Port: ptr[int32](8080)}, {Name: ptr("grpc-api"), Port: ptr[int32](9091)}},
			Endpoints:   []discoveryv1.Endpoint{endpoint("10.1.0.1", "reviews-v1", ptr(true))},
		},
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "reviews-fqdn", Namespace: "shop"},
			AddressType: discoveryv1.AddressTypeFQDN,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}},
		},
	}
	obj, ok := serviceObject(reviewsService(), slices, lookup, "corp.local")
	if !ok {
		t.Fatal("serviceObject left the Service out")
	}
	if got := obj.Ref.String(); got != "Service shop/reviews (kubernetes)" {
		t.Errorf("Ref = %s, want Service shop/reviews (kubernetes)", got)
	}
	portMap := map[string]uint32{"web": 8080, "grpc-api": 9091}
	want := &networking.ServiceEntry{
		Hosts:      []string{"reviews.shop.svc.corp.local"},
		Addresses:  []string{"10.96.0.10", "fd00::10"},
		Location:   networking.ServiceEntry_MESH_INTERNAL,
		Resolution: networking.ServiceEntry_STATIC,
		Ports: []*networking.ServicePort{
			{Number: 80, Name: "web", Protocol: "HTTP", TargetPort: 8080},
			{Number: 9090, Name: "grpc-api", Protocol: "GRPC"},
			{Number: 81, Name: "h2", Protocol: "HTTP2"},
			{Number: 9100, Name: "metrics", Protocol: "TCP"},
		},
		Endpoints: []*networking.WorkloadEntry{
			{Address: "10.1.0.1", Ports: portMap, Labels: map[string]string{"app": "reviews", "version": "v1"}, ServiceAccount: "reviews"},
			{Address: "10.1.0.2", Ports: portMap, Labels: map[string]string{"app": "reviews", "version": "v2"}, ServiceAccount: "default"},
			{Address: "10.1.0.9", Ports: portMap},
		},
	}
	if d := cmp.Diff(want, obj.Spec, protocmp.Transform(),
		protocmp.SortRepeated(func(a, b *networking.WorkloadEntry) bool { return a.GetAddress() < b.GetAddress() })); d != "" {
		t.Errorf("spec (-want +got):\n%s", d)
	}
}

func TestServicesMinimeshDoesNotProxy(t *testing.T) {
	external := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}
	udpOnly := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	}
	for _, svc := range []*corev1.Service{external, udpOnly} {
		if _, ok := serviceObject(svc, nil, nil, ""); ok {
			t.Errorf("Service %s was converted; want it left out", svc.Name)
		}
	}
	headless := reviewsService()
	headless.Spec.ClusterIP, headless.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	obj, ok := serviceObject(headless, nil, nil, "")
	if !ok || len(obj.Spec.(*networking.ServiceEntry).GetAddresses()) != 0 {
		t.Errorf("headless Service: converted %v, addresses %v; want converted without addresses", ok, obj.Spec)
	}
	if got := obj.Spec.(*networking.ServiceEntry).GetHosts(); len(got) != 1 || got[0] != "reviews.shop.svc.cluster.local" {
		t.Errorf("hosts with the default domain = %v", got)
	}
}

func TestPodObject(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1-abc", Namespace: "shop",
			Labels: map[string]string{"app": "reviews", "security.istio.io/tlsMode": "istio"}},
		Spec:   corev1.PodSpec{ServiceAccountName: "reviews"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.1"},
	}
	obj, ok := podObject(pod)
	want := &networking.WorkloadEntry{Address: "10.1.0.1", ServiceAccount: "reviews",
		Labels: map[string]string{"app": "reviews", "security.istio.io/tlsMode": "istio"}}
	if !ok || obj.Ref.String() != "Pod shop/reviews-v1-abc (kubernetes)" {
		t.Fatalf("podObject = %v, %v", obj.Ref, ok)
	}
	if d := cmp.Diff(want, obj.Spec, protocmp.Transform()); d != "" {
		t.Errorf("spec (-want +got):\n%s", d)
	}
	for _, status := range []corev1.PodStatus{
		{Phase: corev1.PodPending},
		{Phase: corev1.PodSucceeded, PodIP: "10.1.0.1"},
		{Phase: corev1.PodFailed, PodIP: "10.1.0.1"},
	} {
		pod.Status = status
		if _, ok := podObject(pod); ok {
			t.Errorf("pod with status %+v became a workload; want it left out", status)
		}
	}
}
