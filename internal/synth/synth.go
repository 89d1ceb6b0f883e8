// Package synth generates synthetic meshes as Istio YAML, for benchmarks
// and load tests: S services, each with two versions (one WorkloadEntry
// each), a DestinationRule with subsets v1/v2 and a 90/10 VirtualService.
//
// Generate returns the objects one by one, so that a load test can keep
// the ones it edits in files of their own; the helpers (VirtualService,
// WorkloadEntry, PeerAuthentication) write the edits.
package synth

import (
	"bytes"
	"fmt"
)

// YAML returns a mesh of n services in namespace ns as one multi-document
// YAML file. Workload addresses are 10.x.y.z, unique per workload.
func YAML(n int, ns string) []byte {
	return Join(Generate(Options{Services: n, Namespace: ns}))
}

// Options describe a synthetic mesh.
type Options struct {
	Services  int
	Namespace string // "default" if empty
	// Workloads is the total number of WorkloadEntries: two per service
	// (v1 and v2) if 0 or less than that. Those beyond two per service are
	// spread over the services in turn, alternating v1 and v2, and named
	// svc-XXXX-vN-K.
	Workloads int
	// SidecarImports, when above 0, scopes every proxy with an Istio
	// Sidecar: the workloads of service i import svc-0000 and the services
	// i, i+1, ... up to SidecarImports services in all (wrapping around);
	// proxies outside the mesh import svc-0000 only (the mesh-wide default
	// in RootNamespace). svc-0000 is always imported, so that the load
	// test's changes reach every proxy.
	SidecarImports int
	// RootNamespace holds the mesh-wide default Sidecar; "istio-system" if
	// empty.
	RootNamespace string
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return "default"
	}
	return o.Namespace
}

// Object is one generated Istio object.
type Object struct {
	Kind, Name, Namespace string
	YAML                  []byte // one YAML document, ending with "---\n"
}

// Workload is one generated WorkloadEntry: the node ID of its sidecar is
// Name.Namespace.
type Workload struct {
	Name, Namespace string
	Service         string // the service it belongs to (label app)
	Version         string // v1 or v2 (label version)
	Address         string
}

// NodeID is the node ID of the workload's sidecar.
func (w Workload) NodeID() string { return w.Name + "." + w.Namespace }

// ServiceName names the i-th service: svc-0000, svc-0001, ...
func ServiceName(i int) string { return fmt.Sprintf("svc-%04d", i) }

// Address is the address of the idx-th workload (idx from 1): 10.x.y.z.
func Address(idx int) string {
	return fmt.Sprintf("10.%d.%d.%d", (idx>>16)&255, (idx>>8)&255, idx&255)
}

// Workloads lists the mesh's workloads: svc-0000-v1, svc-0000-v2,
// svc-0001-v1, ..., then the extra ones.
func Workloads(o Options) []Workload {
	ns := o.namespace()
	var out []Workload
	for i := 0; i < o.Services; i++ {
		for v := 1; v <= 2; v++ {
			name := ServiceName(i)
			out = append(out, Workload{Name: fmt.Sprintf("%s-v%d", name, v), Namespace: ns, Service: name,
				Version: fmt.Sprintf("v%d", v), Address: Address(2*i + v)})
		}
	}
	for k := 0; o.Services > 0 && len(out) < o.Workloads; k++ {
		svc := k % o.Services
		v := 1 + (k/o.Services)%2
		name := ServiceName(svc)
		out = append(out, Workload{Name: fmt.Sprintf("%s-v%d-%d", name, v, k), Namespace: ns, Service: name,
			Version: fmt.Sprintf("v%d", v), Address: Address(len(out) + 1)})
	}
	return out
}

// Generate returns the mesh's objects: per service a ServiceEntry, its two
// WorkloadEntries, a DestinationRule and a VirtualService; then the extra
// WorkloadEntries.
func Generate(o Options) []Object {
	ns := o.namespace()
	workloads := Workloads(o)
	var out []Object
	for i := 0; i < o.Services; i++ {
		name := ServiceName(i)
		out = append(out, serviceEntry(name, ns), WorkloadEntry(workloads[2*i]), WorkloadEntry(workloads[2*i+1]),
			destinationRule(name, ns), VirtualService(name, ns, 90, 10))
	}
	for _, w := range workloads[min(len(workloads), 2*o.Services):] {
		out = append(out, WorkloadEntry(w))
	}
	if o.SidecarImports > 0 {
		out = append(out, sidecars(o)...)
	}
	return out
}

// sidecars scopes the proxies of the mesh (see Options.SidecarImports).
func sidecars(o Options) []Object {
	ns, root := o.namespace(), o.RootNamespace
	if root == "" {
		root = "istio-system"
	}
	host := func(i int) string { return fmt.Sprintf("%s/%s.%s.svc.cluster.local", ns, ServiceName(i), ns) }
	out := []Object{sidecar("default", root, "", []string{host(0)})}
	for i := 0; i < o.Services; i++ {
		hosts := []string{host(0)}
		for k := 0; len(hosts) < o.SidecarImports && k < o.Services; k++ {
			if j := (i + k) % o.Services; j != 0 {
				hosts = append(hosts, host(j))
			}
		}
		out = append(out, sidecar(ServiceName(i), ns, ServiceName(i), hosts))
	}
	return out
}

// sidecar writes an Istio Sidecar importing hosts, for the workloads with
// label app: app (all of its namespace when app is "").
func sidecar(name, ns, app string, hosts []string) Object {
	selector := ""
	if app != "" {
		selector = fmt.Sprintf("\n  workloadSelector: {labels: {app: %s}}", app)
	}
	var list bytes.Buffer
	for i, h := range hosts {
		if i > 0 {
			list.WriteString(", ")
		}
		fmt.Fprintf(&list, "%q", h)
	}
	return Object{Kind: "Sidecar", Name: name, Namespace: ns, YAML: fmt.Appendf(nil, `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: %s, namespace: %s}
spec:%s
  egress: [{hosts: [%s]}]
---
`, name, ns, selector, list.String())}
}

// Join concatenates objects into one multi-document YAML file.
func Join(objs []Object) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		b.Write(o.YAML)
	}
	return b.Bytes()
}

func serviceEntry(name, ns string) Object {
	return Object{Kind: "ServiceEntry", Name: name, Namespace: ns, YAML: fmt.Appendf(nil, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s.%[2]s.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: %[1]s}}
---
`, name, ns)}
}

// WorkloadEntry writes a workload of the mesh (or a new one: an endpoint
// added to its service's subset).
func WorkloadEntry(w Workload) Object {
	return Object{Kind: "WorkloadEntry", Name: w.Name, Namespace: w.Namespace, YAML: fmt.Appendf(nil, `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  address: %[3]s
  labels: {app: %[4]s, version: %[5]s}
  serviceAccount: %[4]s
---
`, w.Name, w.Namespace, w.Address, w.Service, w.Version)}
}

func destinationRule(name, ns string) Object {
	return Object{Kind: "DestinationRule", Name: name, Namespace: ns, YAML: fmt.Appendf(nil, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  host: %[1]s
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
`, name, ns)}
}

// VirtualService writes the VirtualService of a service: w1 percent to
// subset v1 and w2 to v2.
func VirtualService(service, ns string, w1, w2 int) Object {
	return Object{Kind: "VirtualService", Name: service, Namespace: ns, YAML: fmt.Appendf(nil, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s]
  http:
  - route:
    - {destination: {host: %[1]s, subset: v1}, weight: %[3]d}
    - {destination: {host: %[1]s, subset: v2}, weight: %[4]d}
---
`, service, ns, w1, w2)}
}

// PeerAuthentication writes a PeerAuthentication without selector: for
// the whole namespace ns, or the whole mesh if ns is the root namespace
// (istio-system). mode is STRICT, PERMISSIVE or DISABLE.
func PeerAuthentication(name, ns, mode string) Object {
	return Object{Kind: "PeerAuthentication", Name: name, Namespace: ns, YAML: fmt.Appendf(nil, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  mtls: {mode: %[3]s}
---
`, name, ns, mode)}
}
