package mesh

import (
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// kubeService is a Kubernetes Service in the shape watcher/kube gives it.
func kubeService(ns, name, host, addr string) Object {
	return Object{
		Ref: Ref{Kind: "Service", Namespace: ns, Name: name, Source: "kubernetes"},
		Spec: &networking.ServiceEntry{
			Hosts:      []string{host},
			Location:   networking.ServiceEntry_MESH_INTERNAL,
			Resolution: networking.ServiceEntry_STATIC,
			Ports:      []*networking.ServicePort{{Number: 80, Name: "http", Protocol: "HTTP"}},
			Endpoints:  []*networking.WorkloadEntry{{Address: addr}},
		},
	}
}

// A Kubernetes Service and a ServiceEntry with the same namespace and name
// are two objects; when they claim the same host, the Service keeps it and
// the message names both real objects.
func TestBuildKubernetesServiceBesideServiceEntry(t *testing.T) {
	svc := kubeService("default", "reviews", "reviews.default.svc.cluster.local", "10.0.0.1")
	se := kubeService("default", "reviews", "reviews.default.svc.cluster.local", "10.0.0.2")
	se.Ref = Ref{Kind: "ServiceEntry", Namespace: "default", Name: "reviews", Source: "se.yaml"}
	other := kubeService("default", "reviews", "other.example.com", "10.0.0.3")
	other.Ref = Ref{Kind: "ServiceEntry", Namespace: "default", Name: "other", Source: "other.yaml"}

	snap, diags := Build([]Object{se, other, svc}, Options{})
	if len(snap.Services) != 2 {
		t.Fatalf("services = %d, want 2 (the Kubernetes one and other.example.com)", len(snap.Services))
	}
	got := snap.Services[1] // sorted: other.example.com, reviews...
	if got.Source.Kind != "Service" || got.Endpoints[0].Address != "10.0.0.1" {
		t.Errorf("reviews comes from %v with endpoint %s, want the Kubernetes Service with 10.0.0.1",
			got.Source, got.Endpoints[0].Address)
	}
	if len(diags) != 1 {
		t.Fatalf("diagnostics = %v, want one about the host claimed twice", diags)
	}
	msg := diags[0].Error()
	for _, want := range []string{"se.yaml: ServiceEntry default/reviews: spec.hosts[0]", "Service default/reviews (kubernetes)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnostic %q does not contain %q", msg, want)
		}
	}
}

// A Pod and a WorkloadEntry with the same namespace and name would share a
// node ID: the Pod keeps it. Workloads come out sorted whatever their kind.
func TestBuildPodsAndWorkloadEntries(t *testing.T) {
	workload := func(kind, ns, name, addr string) Object {
		return Object{
			Ref:  Ref{Kind: kind, Namespace: ns, Name: name, Source: "test"},
			Spec: &networking.WorkloadEntry{Address: addr},
		}
	}
	snap, diags := Build([]Object{
		workload("WorkloadEntry", "a", "vm", "10.0.0.9"),
		workload("WorkloadEntry", "b", "x", "10.0.0.2"),
		workload("Pod", "b", "x", "10.0.0.1"),
		workload("Pod", "a", "z", "10.0.0.3"),
	}, Options{})
	var ids []string
	for _, w := range snap.Workloads {
		ids = append(ids, w.ID()+"="+w.Source.Kind)
	}
	if got, want := strings.Join(ids, " "), "vm.a=WorkloadEntry z.a=Pod x.b=Pod"; got != want {
		t.Errorf("workloads = %s, want %s", got, want)
	}
	if len(diags) != 1 || !strings.Contains(diags[0].Error(), "WorkloadEntry b/x: metadata.name: workload x.b is already Pod b/x") {
		t.Errorf("diagnostics = %v, want one saying WorkloadEntry b/x loses to Pod b/x", diags)
	}
}

// LastGood keeps serving the last valid version of an object, PeerAuthentications included.
func TestLastGoodKeepsRejectedObjects(t *testing.T) {
	objs := func(yaml string) []Object {
		t.Helper()
		o, _, err := Decode("pa.yaml", []byte(yaml), "default")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	const strict = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}
`
	var lg LastGood
	snap, _, notes := lg.Build(objs(strict), nil, Options{})
	if len(snap.PeerAuthentications) != 1 || len(notes) != 0 {
		t.Fatalf("first build: %d policies, notes %v; want 1 and none", len(snap.PeerAuthentications), notes)
	}
	// A wildcard in a selector is an error.
	broken := objs(strings.Replace(strict, "{app: web}", `{app: "*"}`, 1))
	snap, diags, notes := lg.Build(broken, nil, Options{})
	if len(diags) != 1 || diags[0].Severity != SeverityError {
		t.Fatalf("diagnostics of the broken version = %v, want one error", diags)
	}
	if len(snap.PeerAuthentications) != 1 || snap.PeerAuthentications[0].Mode != MTLSStrict {
		t.Errorf("policies while broken = %+v, want the last good STRICT one", snap.PeerAuthentications)
	}
	if len(notes) != 1 || !strings.Contains(notes[0].Error(), "PeerAuthentication default/strict: invalid; serving its last good version") {
		t.Errorf("notes = %v, want one about the last good version", notes)
	}
	// Deleted: gone for good.
	snap, _, _ = lg.Build(nil, nil, Options{})
	if len(snap.PeerAuthentications) != 0 {
		t.Errorf("policies after delete = %d, want 0", len(snap.PeerAuthentications))
	}
}
