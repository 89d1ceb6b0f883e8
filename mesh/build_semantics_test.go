package mesh

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1alpha3"
)

// buildYAML decodes and builds one YAML text, failing on syntax errors.
func buildYAML(t *testing.T, text string, opts Options) (*Snapshot, []string) {
	t.Helper()
	objs, diags, err := Decode("test.yaml", []byte(text), "default")
	if err != nil {
		t.Fatal(err)
	}
	snap, more := Build(objs, opts)
	return snap, render(append(diags, more...))
}

// TestBuildDefaults checks what unset fields mean: location (MESH_EXTERNAL,
// as in Istio), a DNS service without endpoints (its own host), a port
// protocol taken from the port name, a workload's service account.
func TestBuildDefaults(t *testing.T) {
	snap, diags := buildYAML(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec: {hosts: [httpbin.org], resolution: DNS, ports: [{number: 80, name: http-web}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec: {address: 10.9.9.9}
`, Options{})
	if len(diags) != 0 {
		t.Errorf("unexpected diagnostics: %q", diags)
	}
	want := &Snapshot{
		DomainSuffix:  "cluster.local",
		RootNamespace: "istio-system",
		Services: []*Service{{
			Hostname:   "httpbin.org",
			Namespace:  "default",
			Ports:      []Port{{Number: 80, Name: "http-web", Protocol: ProtocolHTTP}},
			Resolution: ResolutionDNS,
			External:   true,
			Endpoints:  []*Endpoint{{Address: "httpbin.org"}},
			Source:     Ref{Kind: "ServiceEntry", Namespace: "default", Name: "httpbin", Source: "test.yaml#1"},
		}},
		Workloads: []*Workload{{
			Name:           "vm",
			Namespace:      "default",
			Address:        "10.9.9.9",
			ServiceAccount: "default",
			Source:         Ref{Kind: "WorkloadEntry", Namespace: "default", Name: "vm", Source: "test.yaml#2"},
		}},
	}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("snapshot mismatch (-want +got):\n%s", diff)
	}
}

// TestBuildSkipsUnsupportedMatches checks that a match block with a
// condition minimesh cannot evaluate never matches, rather than matching
// everyone, and that a block for gateways only never matches either.
func TestBuildSkipsUnsupportedMatches(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	more, _, err := Decode("test.yaml", []byte(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: testers}
spec:
  hosts: [my-app.example.com]
  http:
  - match: [{sourceLabels: {app: tester}}]
    route: [{destination: {host: my-app, subset: v2}}]
  - match: [{queryParams: {debug: {exact: "1"}}}, {uri: {prefix: /debug}, gateways: [mesh]}]
    route: [{destination: {host: my-app, subset: v2}}]
  - match: [{uri: {prefix: /admin}, gateways: [istio-system/ingress]}]
    route: [{destination: {host: my-app, subset: v2}}]
  - route: [{destination: {host: my-app, subset: v1}}]
`), "default")
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := Build(append(objs, more...), Options{})
	v := func(subset string) []RouteDestination {
		return []RouteDestination{{Host: "my-app.default.svc.cluster.local", Subset: subset, Weight: 100}}
	}
	want := []HTTPRoute{
		{Match: []HTTPMatch{{URI: &StringMatch{Kind: MatchPrefix, Value: "/debug"}}}, Route: v("v2")},
		{Route: v("v1")},
	}
	if diff := cmp.Diff(want, findVS(snap, "default", "testers").HTTP); diff != "" {
		t.Errorf("routes mismatch (-want +got):\n%s", diff)
	}
}

// TestBuildWildcardDestinationRule checks that a subset can come from a
// DestinationRule for a wildcard host, the most specific one winning.
func TestBuildWildcardDestinationRule(t *testing.T) {
	_, diags := buildYAML(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec: {hosts: [api.eu.example.com], resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}], endpoints: [{address: api.example.net, labels: {zone: a}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec: {host: "*.example.com", subsets: [{name: generic, labels: {zone: a}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: eu}
spec: {host: "*.eu.example.com", subsets: [{name: zone-a, labels: {zone: a}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.eu.example.com]
  http: [{route: [{destination: {host: api.eu.example.com, subset: zone-a}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-generic}
spec:
  hosts: [api-generic.example.com]
  http: [{route: [{destination: {host: api.eu.example.com, subset: generic}}]}]
`, Options{})
	want := []string{
		`warning: test.yaml#5: VirtualService default/api-generic: spec.hosts[0]: "api-generic.example.com" matches no service (known hosts: api.eu.example.com)`,
		`error: test.yaml#5: VirtualService default/api-generic: spec.http[0].route[0].destination.subset: subset "generic" is not defined by DestinationRule default/eu (defined: zone-a)`,
	}
	if diff := cmp.Diff(want, diags); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestBuildDomainSuffix checks that short names use Options.DomainSuffix.
func TestBuildDomainSuffix(t *testing.T) {
	snap, diags := buildYAML(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: my-app}
spec: {hosts: [my-app.default.svc.mesh.internal], resolution: STATIC, ports: [{number: 80, name: http, protocol: HTTP}], endpoints: [{address: 10.0.0.1}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: my-app}
spec: {hosts: [my-app], http: [{route: [{destination: {host: my-app}}]}]}
`, Options{DomainSuffix: "mesh.internal"})
	if len(diags) != 0 {
		t.Errorf("unexpected diagnostics: %q", diags)
	}
	if snap.DomainSuffix != "mesh.internal" {
		t.Errorf("DomainSuffix = %q, want mesh.internal", snap.DomainSuffix)
	}
	if got := snap.VirtualServices[0].Hosts; !cmp.Equal(got, []string{"my-app.default.svc.mesh.internal"}) {
		t.Errorf("hosts = %q, want [my-app.default.svc.mesh.internal]", got)
	}
}

// TestBuildRejectsBadObjects checks the objects Build cannot use at all:
// the same object twice, a spec of the wrong type, an unknown kind.
func TestBuildRejectsBadObjects(t *testing.T) {
	vs := func(source string) Object {
		return Object{
			Ref: Ref{Kind: "VirtualService", Namespace: "default", Name: "twice", Source: source},
			Spec: &networking.VirtualService{Hosts: []string{"twice.example.com"}, Http: []*networking.HTTPRoute{{
				Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "twice.example.com"}}},
			}}},
		}
	}
	se := Object{
		Ref: Ref{Kind: "ServiceEntry", Namespace: "default", Name: "twice", Source: "kubernetes"},
		Spec: &networking.ServiceEntry{Hosts: []string{"twice.example.com"}, Resolution: networking.ServiceEntry_DNS,
			Ports: []*networking.ServicePort{{Number: 80, Name: "http", Protocol: "HTTP"}}},
	}
	objs := []Object{
		vs("b.yaml"), vs("a.yaml"), se,
		{Ref: Ref{Kind: "DestinationRule", Namespace: "default", Name: "wrong", Source: "c.yaml"}, Spec: &networking.ServiceEntry{}},
		{Ref: Ref{Kind: "Gateway", Namespace: "default", Name: "gw", Source: "d.yaml"}},
	}
	snap, diags := Build(objs, Options{})
	want := []string{
		`error: c.yaml: DestinationRule default/wrong: spec: spec is *v1alpha3.ServiceEntry, want *v1alpha3.DestinationRule`,
		`error: d.yaml: Gateway default/gw: kind: kind "Gateway" is not one minimesh builds`,
		`error: b.yaml: VirtualService default/twice: metadata.name: also defined in a.yaml; only that one is used`,
	}
	if diff := cmp.Diff(want, render(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if len(snap.VirtualServices) != 1 || snap.VirtualServices[0].Source.Source != "a.yaml" {
		t.Errorf("want the VirtualService from a.yaml only, got %v", snap.VirtualServices)
	}
	if len(snap.Services) != 1 {
		t.Errorf("want the ServiceEntry kept, got %v", snap.Services)
	}
}
