package synth

import (
	"strings"
	"testing"

	"github.com/minimesh/minimesh/mesh"
)

// TestDecodes: the generated mesh, its extra workloads and the edit
// helpers' objects are valid Istio YAML for minimesh.
func TestDecodes(t *testing.T) {
	o := Options{Services: 3, Workloads: 8}
	objs := Generate(o)
	objs = append(objs, VirtualService(ServiceName(0), "default", 70, 30),
		PeerAuthentication("default", "istio-system", "STRICT"))
	data := Join(objs)
	got, diags, err := mesh.Decode("synth.yaml", data, "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		if d.Severity == mesh.SeverityError {
			t.Fatal(d)
		}
	}
	if len(got) != len(objs) {
		t.Fatalf("decoded %d objects, generated %d", len(got), len(objs))
	}
	ws := Workloads(o)
	if len(ws) != 8 {
		t.Fatalf("%d workloads, want 8", len(ws))
	}
	seen := map[string]bool{}
	for _, w := range ws {
		if seen[w.Address] || seen[w.Name] {
			t.Fatalf("duplicate workload %+v", w)
		}
		seen[w.Address], seen[w.Name] = true, true
	}
	if ws[6].Name != "svc-0000-v1-0" || ws[7].Service != "svc-0001" || ws[0].NodeID() != "svc-0000-v1.default" {
		t.Fatalf("unexpected workloads %+v", ws)
	}
}

// TestYAMLUnchanged: YAML keeps its documented shape (tests edit it by
// string replacement).
func TestYAMLUnchanged(t *testing.T) {
	y := string(YAML(2, "default"))
	for _, want := range []string{"weight: 90}", "weight: 10}", "address: 10.0.0.4", "name: svc-0001-v2"} {
		if !strings.Contains(y, want) {
			t.Errorf("YAML lacks %q", want)
		}
	}
	if n := strings.Count(y, "---\n"); n != 10 {
		t.Errorf("%d documents, want 10", n)
	}
}
