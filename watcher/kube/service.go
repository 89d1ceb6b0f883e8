package kube

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/minimesh/minimesh/mesh"
)

// A Kubernetes Service is built as the ServiceEntry Istio would derive from
// it: one internal host, <name>.<namespace>.svc.<domain>, its TCP ports, its
// cluster IPs as addresses, and one endpoint per ready address of its
// EndpointSlices, carrying the labels and service account of the pod
// behind it (subsets select on those labels, mTLS checks that identity).

// podInfo finds the pod an endpoint points to.
type podInfo func(namespace, name string) (*corev1.Pod, bool)

// serviceObject converts a Service and its EndpointSlices. It returns false
// for a Service that minimesh does not proxy: ExternalName, or without a
// TCP port.
func serviceObject(svc *corev1.Service, endpointSlices []*discoveryv1.EndpointSlice, pods podInfo, domainSuffix string) (mesh.Object, bool) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return mesh.Object{}, false
	}
	ports, names := servicePorts(svc.Spec.Ports)
	if len(ports) == 0 {
		return mesh.Object{}, false
	}
	spec := &networking.ServiceEntry{
		Hosts:      []string{serviceHost(svc, domainSuffix)},
		Addresses:  clusterIPs(svc),
		Ports:      ports,
		Location:   networking.ServiceEntry_MESH_INTERNAL,
		Resolution: networking.ServiceEntry_STATIC,
		Endpoints:  readyEndpoints(endpointSlices, names, pods),
	}
	return mesh.Object{Ref: ref(kindService, svc.Namespace, svc.Name), Spec: spec}, true
}

// serviceHost is the name a Service is called by in the cluster's DNS.
func serviceHost(svc *corev1.Service, domainSuffix string) string {
	return svc.Name + "." + svc.Namespace + ".svc." + cmp.Or(domainSuffix, mesh.DefaultDomainSuffix)
}

// clusterIPs returns the virtual IPs of a Service; none for a headless one.
func clusterIPs(svc *corev1.Service) []string {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	return slices.DeleteFunc(slices.Clone(ips), func(ip string) bool {
		return ip == "" || ip == corev1.ClusterIPNone
	})
}

// servicePorts converts the TCP ports of a Service (sidecars proxy TCP
// only: UDP and SCTP ports are left out). It also returns the port names as
// the EndpointSlices write them, mapped to the names given here.
func servicePorts(ports []corev1.ServicePort) ([]*networking.ServicePort, map[string]string) {
	var out []*networking.ServicePort
	names := map[string]string{}
	for _, p := range ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		sp := &networking.ServicePort{
			Number:   uint32(p.Port),
			Name:     portName(p),
			Protocol: portProtocol(p),
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
			sp.TargetPort = uint32(p.TargetPort.IntVal)
		}
		names[p.Name] = sp.Name
		out = append(out, sp)
	}
	return out, names
}

// portName names a Service port. Kubernetes allows one unnamed port; the
// mesh model refers to ports by name, so it gets one from its number.
func portName(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("port-%d", p.Port)
}

// istioProtocols maps the protocol names of Istio's conventions (lower
// case) to the protocols minimesh routes. Any other name is plain TCP.
var istioProtocols = map[string]string{
	"http":              "HTTP",
	"http2":             "HTTP2",
	"grpc":              "GRPC",
	"tcp":               "TCP",
	"kubernetes.io/h2c": "HTTP2",
	"kubernetes.io/ws":  "HTTP",
}

// portProtocol picks the protocol of a Service port as Istio does: from
// appProtocol, else from the prefix of the port name ("http-web",
// "grpc"), else TCP. Istio would sniff such a port at run time; minimesh
// cannot, so it carries the bytes as they are.
func portProtocol(p corev1.ServicePort) string {
	if p.AppProtocol != nil {
		if proto, ok := istioProtocols[strings.ToLower(*p.AppProtocol)]; ok {
			return proto
		}
	}
	prefix, _, _ := strings.Cut(strings.ToLower(p.Name), "-")
	if proto, ok := istioProtocols[prefix]; ok {
		return proto
	}
	return "TCP"
}

// readyEndpoints returns one endpoint per ready address of the slices,
// each once. names maps the slices' port names to the service's.
func readyEndpoints(endpointSlices []*discoveryv1.EndpointSlice, names map[string]string, pods podInfo) []*networking.WorkloadEntry {
	endpointSlices = slices.Clone(endpointSlices)
	slices.SortFunc(endpointSlices, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	var out []*networking.WorkloadEntry
	seen := map[string]bool{}
	for _, s := range endpointSlices {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue // only IP addresses can be load balanced over EDS
		}
		ports := slicePorts(s.Ports, names)
		for _, ep := range s.Endpoints {
			if !isReady(ep.Conditions) {
				continue
			}
			labels, sa := podIdentity(s.Namespace, ep.TargetRef, pods)
			for _, addr := range ep.Addresses {
				key := addr + " " + fmt.Sprint(ports)
				if seen[key] {
					continue // the same endpoint in two slices, while one replaces the other
				}
				seen[key] = true
				out = append(out, &networking.WorkloadEntry{
					Address:        addr,
					Ports:          maps.Clone(ports),
					Labels:         labels,
					ServiceAccount: sa,
				})
			}
		}
	}
	return out
}

// isReady reports whether an endpoint may receive traffic. An unset ready
// condition means ready, as the EndpointSlice API says; an endpoint that is
// serving but not ready (terminating) is out.
func isReady(c discoveryv1.EndpointConditions) bool {
	return c.Ready == nil || *c.Ready
}

// slicePorts maps the service port names of a slice's TCP ports to their
// numbers on the endpoints.
func slicePorts(ports []discoveryv1.EndpointPort, names map[string]string) map[string]uint32 {
	out := map[string]uint32{}
	for _, p := range ports {
		name, known := names[ptrOr(p.Name, "")]
		if !known || p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		out[name] = uint32(*p.Port)
	}
	return out
}

// podIdentity returns the labels and service account of the pod behind an
// endpoint; none when the endpoint is not a pod or the pod is not known.
func podIdentity(namespace string, target *corev1.ObjectReference, pods podInfo) (map[string]string, string) {
	if target == nil || target.Kind != kindPod {
		return nil, ""
	}
	pod, ok := pods(cmp.Or(target.Namespace, namespace), target.Name)
	if !ok {
		return nil, ""
	}
	return pod.Labels, serviceAccount(pod)
}

// serviceAccount is the identity a pod runs as.
func serviceAccount(pod *corev1.Pod) string {
	return cmp.Or(pod.Spec.ServiceAccountName, "default")
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// ref names an object read from the cluster.
func ref(kind, namespace, name string) mesh.Ref {
	return mesh.Ref{Kind: kind, Namespace: namespace, Name: name, Source: source}
}

// source is the Ref.Source of every object read from the cluster.
const source = "kubernetes"
