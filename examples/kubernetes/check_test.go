package kubernetes

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/mesh"
)

// demoMesh is what minimesh would build from the demo directory: its Istio
// objects, decoded as `minimesh check` decodes files, and its Service and
// the pods of its Deployments in the shape watcher/kube gives them (a
// Service is built as a ServiceEntry, a Pod as a WorkloadEntry). extra
// files are applied on top, later ones replacing objects of the same name.
func demoMesh(t *testing.T, extra ...string) (*mesh.Snapshot, []mesh.Diagnostic) {
	t.Helper()
	byName := map[string]mesh.Object{}
	add := func(o mesh.Object) { byName[o.Ref.Kind+" "+o.Ref.Namespace+"/"+o.Ref.Name] = o }
	for _, file := range append(append([]string{}, demoFiles...), extra...) {
		for i, doc := range readDocuments(t, file) {
			source := fmt.Sprintf("%s#%d", file, i+1)
			if isIstio(doc) {
				objs, diags, err := mesh.Decode(source, doc, "default")
				if err != nil || len(diags) > 0 {
					t.Fatalf("%s: %v %v", source, err, diags)
				}
				for _, o := range objs {
					add(o)
				}
				continue
			}
			for _, o := range registryObjects(t, source, doc) {
				add(o)
			}
		}
	}
	return mesh.Build(slicesOf(byName), mesh.Options{})
}

// registryObjects turns a Service or a Deployment into what watcher/kube
// hands to mesh.Build: a Service with a ServiceEntry spec, and one Pod with
// a WorkloadEntry spec per replica (addresses made up, as a cluster would).
func registryObjects(t *testing.T, source string, doc []byte) []mesh.Object {
	var head struct{ Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	switch head.Kind {
	case "Service":
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		spec := &networking.ServiceEntry{
			Hosts:            []string{svc.Name + "." + svc.Namespace + ".svc.cluster.local"},
			Location:         networking.ServiceEntry_MESH_INTERNAL,
			Resolution:       networking.ServiceEntry_STATIC,
			WorkloadSelector: &networking.WorkloadSelector{Labels: svc.Spec.Selector},
		}
		for _, p := range svc.Spec.Ports {
			spec.Ports = append(spec.Ports, &networking.ServicePort{
				Number: uint32(p.Port), Name: p.Name, Protocol: strings.ToUpper(*p.AppProtocol),
				TargetPort: uint32(p.TargetPort.IntValue()),
			})
		}
		return []mesh.Object{{Ref: mesh.Ref{Kind: "Service", Namespace: svc.Namespace, Name: svc.Name, Source: source}, Spec: spec}}
	case "Deployment":
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &d); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		var pods []mesh.Object
		for i := range int(*d.Spec.Replicas) {
			name := fmt.Sprintf("%s-%d", d.Name, i)
			pods = append(pods, mesh.Object{
				Ref: mesh.Ref{Kind: "Pod", Namespace: d.Namespace, Name: name, Source: source},
				Spec: &networking.WorkloadEntry{
					Address:        fmt.Sprintf("10.1.%d.%d", len(d.Name), i+1),
					Labels:         maps.Clone(d.Spec.Template.Labels),
					ServiceAccount: d.Spec.Template.Spec.ServiceAccountName,
				},
			})
		}
		return pods
	}
	return nil
}

func slicesOf(m map[string]mesh.Object) []mesh.Object {
	var out []mesh.Object
	for _, o := range m {
		out = append(out, o)
	}
	return out
}

// TestDemoBuildsLikeMinimeshCheck: the demo's objects build without a
// single error or warning, the VirtualService splits 90/10 between the two
// Deployments, and each subset holds exactly the pods of its version.
func TestDemoBuildsLikeMinimeshCheck(t *testing.T) {
	snap, diags := demoMesh(t)
	for _, d := range diags {
		if d.Severity != mesh.SeverityInfo {
			t.Errorf("minimesh check would report: %v", d)
		}
	}
	const host = "my-app.demo.svc.cluster.local"
	if len(snap.VirtualServices) != 1 || len(snap.VirtualServices[0].HTTP) != 1 {
		t.Fatalf("virtual services: %+v", snap.VirtualServices)
	}
	var split []string
	for _, d := range snap.VirtualServices[0].HTTP[0].Route {
		split = append(split, fmt.Sprintf("%s|%s=%d", d.Host, d.Subset, d.Weight))
	}
	want := []string{host + "|v1=90", host + "|v2=10"}
	if diff := cmp.Diff(want, split); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}

	var svc *mesh.Service
	for _, s := range snap.Services {
		if s.Hostname == host {
			svc = s
		}
	}
	if svc == nil || len(snap.DestinationRules) != 1 {
		t.Fatalf("service %s: %v; destination rules: %d", host, svc, len(snap.DestinationRules))
	}
	for _, subset := range snap.DestinationRules[0].Subsets {
		var members []string
		for _, e := range svc.Endpoints {
			if labels.SelectorFromSet(subset.Labels).Matches(labels.Set(e.Labels)) {
				members = append(members, e.Workload.Name)
			}
		}
		if diff := cmp.Diff([]string{"my-app-" + subset.Name + "-0"}, members); diff != "" {
			t.Errorf("subset %s (-want +got):\n%s", subset.Name, diff)
		}
	}
}

// TestMTLSWalkthrough: the demo starts PERMISSIVE, and the strict file
// turns it STRICT for every workload of the namespace.
func TestMTLSWalkthrough(t *testing.T) {
	for _, tc := range []struct {
		extra []string
		want  mesh.MTLSMode
	}{
		{nil, mesh.MTLSPermissive},
		{[]string{strictFile}, mesh.MTLSStrict},
	} {
		snap, _ := demoMesh(t, tc.extra...)
		if len(snap.Workloads) != 3 {
			t.Fatalf("%d workloads, want my-app-v1, my-app-v2 and client", len(snap.Workloads))
		}
		for _, w := range snap.Workloads {
			if got := snap.MTLSMode(w, 8080); got != tc.want {
				t.Errorf("with %v: %s is %s, want %s", tc.extra, w.ID(), got, tc.want)
			}
		}
	}
}

// TestBlogYAMLIsUnchanged: the demo's VirtualService and DestinationRule
// have the very spec of examples/canary; only their namespace differs.
func TestBlogYAMLIsUnchanged(t *testing.T) {
	for _, name := range []string{"virtual-service.yaml", "destination-rule.yaml"} {
		got := specOf(t, filepath.Join("demo", name))
		want := specOf(t, filepath.Join("..", "canary", name))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("demo/%s differs from examples/canary/%s (-canary +demo):\n%s", name, name, diff)
		}
	}
}

// specOf is the spec of the one object in a file, as generic JSON.
func specOf(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct{ Spec json.RawMessage }
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var spec any
	if err := json.Unmarshal(obj.Spec, &spec); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return spec
}
