package mesh

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// blogPeerAuthentication is the blog's mesh-wide STRICT policy, unchanged.
const blogPeerAuthentication = `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`

// TestBuildBlogPeerAuthentication adds the blog's policy to the canary:
// every workload port is STRICT. With another root namespace, the same
// policy only covers istio-system, and the canary is PERMISSIVE again.
func TestBuildBlogPeerAuthentication(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	more, diags, err := Decode("mtls.yaml", []byte(blogPeerAuthentication), "default")
	if err != nil || len(diags) != 0 {
		t.Fatalf("Decode: %v, %v", diags, err)
	}
	objs = append(objs, more...)
	snap, diags := Build(objs, Options{})
	if len(diags) != 0 {
		t.Errorf("unexpected diagnostics: %q", render(diags))
	}
	want := []*PeerAuthentication{{
		Name:      "default",
		Namespace: "istio-system",
		Mode:      MTLSStrict,
		Source:    Ref{Kind: "PeerAuthentication", Namespace: "istio-system", Name: "default", Source: "mtls.yaml"},
	}}
	if diff := cmp.Diff(want, snap.PeerAuthentications); diff != "" {
		t.Errorf("PeerAuthentications (-want +got):\n%s", diff)
	}
	if snap.RootNamespace != "istio-system" {
		t.Errorf("RootNamespace = %q, want istio-system", snap.RootNamespace)
	}
	for _, w := range snap.Workloads {
		for _, port := range []uint32{0, 8080, 9999} {
			if got := snap.MTLSMode(w, port); got != MTLSStrict {
				t.Errorf("MTLSMode(%s, %d) = %s, want STRICT", w.ID(), port, got)
			}
		}
	}

	snap, _ = Build(objs, Options{RootNamespace: "mesh-root"})
	if snap.RootNamespace != "mesh-root" {
		t.Errorf("RootNamespace = %q, want mesh-root", snap.RootNamespace)
	}
	if got := snap.MTLSMode(snap.Workloads[0], 8080); got != MTLSPermissive {
		t.Errorf("root namespace mesh-root: MTLSMode(my-app-v1, 8080) = %s, want PERMISSIVE", got)
	}
	inRoot := &Workload{Name: "ingress", Namespace: "istio-system"}
	if got := snap.MTLSMode(inRoot, 8080); got != MTLSStrict {
		t.Errorf("root namespace mesh-root: the policy still covers istio-system; got %s", got)
	}
}

// precedenceYAML exercises every level of Istio's precedence. The comments
// say what each object is for; TestMTLSModePrecedence lists the outcomes.
const precedenceYAML = `
# mesh-wide STRICT
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
# shop: namespace-wide PERMISSIVE
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
---
# shop, app=api: mode inherited, DISABLE on 9090, 8080 written UNSET
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: UNSET}
  portLevelMtls:
    9090: {mode: DISABLE}
    8080: {mode: UNSET}
---
# shop, app=legacy: DISABLE, but STRICT on 8443
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: legacy, namespace: shop}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: DISABLE}, portLevelMtls: {8443: {mode: STRICT}}}
---
# inherit: a namespace-wide policy that sets nothing
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: inherit}
spec: {}
---
# inherit, app=web: no mode, PERMISSIVE on 8080
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: inherit}
spec: {selector: {matchLabels: {app: web}}, portLevelMtls: {8080: {mode: PERMISSIVE}}}
---
# a selector in the root namespace: ignored, for every workload
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: tools, namespace: istio-system}
spec: {selector: {matchLabels: {app: tool}}, mtls: {mode: DISABLE}}
---
# portLevelMtls without selector: ignored, DISABLE on every port
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: old}
spec: {mtls: {mode: DISABLE}, portLevelMtls: {8080: {mode: STRICT}}}
`

// precedenceWorkloads are the workloads of precedenceYAML, "ns/name" ->
// labels.
var precedenceWorkloads = map[string]map[string]string{
	"shop/api-1":        {"app": "api"},
	"shop/legacy-1":     {"app": "legacy"},
	"shop/cart-1":       {"app": "cart"},
	"inherit/web-1":     {"app": "web"},
	"inherit/db-1":      {"app": "db"},
	"free/x-1":          {"app": "x"},
	"free/tool-1":       {"app": "tool"},
	"istio-system/tool": {"app": "tool"},
	"old/app-1":         {"app": "old"},
}

// workloadEntries renders WorkloadEntries for the given workloads, in
// name order.
func workloadEntries(workloads map[string]map[string]string) string {
	var out strings.Builder
	for _, id := range slices.Sorted(maps.Keys(workloads)) {
		ns, name, _ := strings.Cut(id, "/")
		fmt.Fprintf(&out, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"+
			"metadata: {name: %s, namespace: %s}\nspec: {address: 10.0.0.1, labels: {app: %s}}\n",
			name, ns, workloads[id]["app"])
	}
	return out.String()
}

func TestMTLSModePrecedence(t *testing.T) {
	snap, diags := buildYAML(t, precedenceYAML+workloadEntries(precedenceWorkloads), Options{})
	wantDiags := []string{
		`warning: test.yaml#7: PeerAuthentication istio-system/tools: spec.selector: a policy with a selector in the root namespace "istio-system" applies to no workload (Istio ignores it too); put it in the namespace of the workloads it selects, or remove the selector to make it mesh-wide`,
		`warning: test.yaml#8: PeerAuthentication old/default: spec.portLevelMtls: ignored: port-level modes apply only to a policy with a selector (Istio rejects this policy); the policy's mode applies to every port`,
	}
	if diff := cmp.Diff(wantDiags, diags); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	tests := []struct {
		workload string
		port     uint32
		want     MTLSMode
	}{
		{"shop/api-1", 9090, MTLSDisable},       // port level
		{"shop/api-1", 8080, MTLSPermissive},    // port UNSET -> workload UNSET -> namespace
		{"shop/api-1", 7070, MTLSPermissive},    // no port level -> workload UNSET -> namespace
		{"shop/api-1", 0, MTLSPermissive},       // the mode of unnamed ports
		{"shop/legacy-1", 8443, MTLSStrict},     // port level over the workload's mode
		{"shop/legacy-1", 80, MTLSDisable},      // workload over namespace and mesh
		{"shop/cart-1", 80, MTLSPermissive},     // namespace over mesh
		{"inherit/web-1", 8080, MTLSPermissive}, // port level
		{"inherit/web-1", 9000, MTLSStrict},     // workload UNSET -> namespace UNSET -> mesh
		{"inherit/db-1", 9000, MTLSStrict},      // namespace UNSET -> mesh
		{"free/x-1", 80, MTLSStrict},            // no namespace policy -> mesh
		{"free/tool-1", 80, MTLSStrict},         // root-namespace selector reaches no other namespace
		{"istio-system/tool", 80, MTLSStrict},   // ... nor the root namespace itself
		{"old/app-1", 8080, MTLSDisable},        // port level ignored without selector
		{"old/app-1", 9090, MTLSDisable},
	}
	for _, tt := range tests {
		w := findWorkload(t, snap, tt.workload)
		if got := snap.MTLSMode(w, tt.port); got != tt.want {
			t.Errorf("MTLSMode(%s, %d) = %s, want %s", tt.workload, tt.port, got, tt.want)
		}
	}

	// Without the mesh-wide policy, what inherited all the way is PERMISSIVE.
	withoutMesh := &Snapshot{Workloads: snap.Workloads}
	for _, pa := range snap.PeerAuthentications {
		if pa.Namespace != "istio-system" {
			withoutMesh.PeerAuthentications = append(withoutMesh.PeerAuthentications, pa)
		}
	}
	for id, want := range map[string]MTLSMode{"free/x-1": MTLSPermissive, "inherit/web-1": MTLSPermissive, "shop/legacy-1": MTLSDisable} {
		if got := withoutMesh.MTLSMode(findWorkload(t, snap, id), 80); got != want {
			t.Errorf("without mesh policy: MTLSMode(%s, 80) = %s, want %s", id, got, want)
		}
	}
	// No policy at all: PERMISSIVE.
	none, _ := buildYAML(t, workloadEntries(precedenceWorkloads), Options{})
	for _, w := range none.Workloads {
		if got := none.MTLSMode(w, 80); got != MTLSPermissive {
			t.Errorf("no policy: MTLSMode(%s, 80) = %s, want PERMISSIVE", w.ID(), got)
		}
	}
}

// findWorkload returns the workload "namespace/name" of snap.
func findWorkload(t *testing.T, snap *Snapshot, id string) *Workload {
	t.Helper()
	for _, w := range snap.Workloads {
		if w.Namespace+"/"+w.Name == id {
			return w
		}
	}
	t.Fatalf("no workload %s", id)
	return nil
}

// TestDecodePeerAuthenticationAPIVersions reads the same policy as
// security.istio.io/v1 and v1beta1, and refuses the other groups.
func TestDecodePeerAuthenticationAPIVersions(t *testing.T) {
	spec := "kind: PeerAuthentication\nmetadata: {name: pa}\n" +
		"spec: {selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}\n"
	var specs []proto.Message
	for _, v := range []string{"v1", "v1beta1"} {
		objs, diags, err := Decode("f.yaml", []byte("apiVersion: security.istio.io/"+v+"\n"+spec), "default")
		if err != nil || len(diags) != 0 || len(objs) != 1 {
			t.Fatalf("%s: got %v, %v, %v; want one object", v, objs, diags, err)
		}
		specs = append(specs, objs[0].Spec)
	}
	if !proto.Equal(specs[0], specs[1]) {
		t.Errorf("v1beta1 spec = %v, want the same as v1's %v", specs[1], specs[0])
	}
	_, diags, _ := Decode("f.yaml", []byte("apiVersion: networking.istio.io/v1\n"+spec+
		"---\napiVersion: security.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: {hosts: [a]}\n"), "default")
	want := []string{
		`warning: f.yaml#1: PeerAuthentication default/pa: apiVersion: "networking.istio.io/v1" is not an API version minimesh reads (want security.istio.io/v1 or v1beta1); object ignored`,
		`warning: f.yaml#2: VirtualService default/vs: apiVersion: "security.istio.io/v1" is not an API version minimesh reads (want networking.istio.io/v1, v1beta1 or v1alpha3); object ignored`,
	}
	if diff := cmp.Diff(want, render(diags)); diff != "" {
		t.Errorf("wrong groups (-want +got):\n%s", diff)
	}
}

// TestBuildPeerAuthenticationDeterministic shuffles policies whose outcome
// depends on order (two namespace-wide policies, overlapping selectors),
// with TLS settings merged into subsets: the snapshot and the diagnostics
// must not change. Nor may the snapshot change with its input afterwards.
func TestBuildPeerAuthenticationDeterministic(t *testing.T) {
	text := precedenceYAML + workloadEntries(precedenceWorkloads) + `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: again, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: all-of-shop, namespace: shop}
spec: {selector: {matchLabels: {app: api}}, mtls: {mode: STRICT}, portLevelMtls: {9090: {mode: PERMISSIVE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api.shop.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v1, labels: {app: api}, trafficPolicy: {tls: {mode: SIMPLE, subjectAltNames: [x.example.com, y.example.com]}}}]
`
	objs, decodeDiags, err := Decode("test.yaml", []byte(text), "default")
	if err != nil || len(decodeDiags) != 0 {
		t.Fatalf("Decode: %q, %v", render(decodeDiags), err)
	}
	want, wantDiags := Build(objs, Options{})
	if len(wantDiags) < 4 {
		t.Fatalf("want diagnostics about order (duplicate, overlap); got %q", render(wantDiags))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		shuffled := slices.Clone(objs)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got, gotDiags := Build(shuffled, Options{})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("shuffle %d: snapshot differs (-first +shuffled):\n%s", i, diff)
		}
		if diff := cmp.Diff(wantDiags, gotDiags); diff != "" {
			t.Fatalf("shuffle %d: diagnostics differ (-first +shuffled):\n%s", i, diff)
		}
	}
	for _, obj := range objs {
		if pa, ok := obj.Spec.(*security.PeerAuthentication); ok && pa.GetSelector() != nil {
			pa.Selector.MatchLabels["app"] = "changed"
			for _, m := range pa.PortLevelMtls {
				m.Mode = security.PeerAuthentication_MutualTLS_UNSET
			}
		}
		if dr, ok := obj.Spec.(*networking.DestinationRule); ok {
			dr.Subsets[0].TrafficPolicy.Tls.SubjectAltNames[0] = "changed"
		}
	}
	again, _ := Build(objs, Options{})
	if cmp.Equal(want, again) {
		t.Fatal("the input change did not reach a second Build; the test proves nothing")
	}
	for _, pa := range want.PeerAuthentications {
		if pa.Namespace == "shop" && pa.Name == "legacy" {
			if pa.Selector["app"] != "legacy" || pa.PortModes[8443] != MTLSStrict {
				t.Errorf("shop/legacy changed with the input: %v, %v", pa.Selector, pa.PortModes)
			}
		}
	}
	if got := findDR(want, "shop", "api").Subsets[0].TrafficPolicy.TLS.SubjectAltNames[0]; got != "x.example.com" {
		t.Errorf("subject alt name changed with the input: %q", got)
	}
}
