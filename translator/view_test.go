package translator

import (
	"os"
	"slices"
	"testing"
)

// TestSidecarScopesTransparentProxies: a transparent sidecar whose Sidecar
// imports one service gets that service's listener, route configuration and
// clusters (and those of what its routes send to), and nothing of the rest
// of the mesh.
func TestSidecarScopesTransparentProxies(t *testing.T) {
	data, err := os.ReadFile("testdata/in/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap := buildSnapshot(t, string(data))
	ix := NewIndex(snap, Options{})
	frontend := translateChecked(t, ix, ix.NewProxy(envoyNode("frontend-0.shop", "REDIRECT"), "default"))
	var clusters []string
	for _, c := range frontend.Clusters {
		clusters = append(clusters, c.GetName())
	}
	for _, want := range []string{"outbound|80||reviews.shop.svc.cluster.local", "outbound|80|v1|reviews.shop.svc.cluster.local",
		"outbound|80||ratings.shop.svc.cluster.local", "PassthroughCluster"} {
		if !slices.Contains(clusters, want) {
			t.Errorf("frontend lacks cluster %s: %v", want, clusters)
		}
	}
	for _, unwanted := range []string{"outbound|80||frontend.shop.svc.cluster.local", "outbound|5432||db.data.svc.cluster.local",
		"outbound|80||telemetry.istio-system.svc.cluster.local"} {
		if slices.Contains(clusters, unwanted) {
			t.Errorf("frontend got cluster %s, which its Sidecar does not import", unwanted)
		}
	}
	rc := findRoutes(t, frontend, "80")
	var hosts []string
	for _, vh := range rc.GetVirtualHosts() {
		hosts = append(hosts, vh.GetName())
	}
	if !slices.Equal(hosts, []string{"reviews.shop.svc.cluster.local:80", "allow_any"}) {
		t.Errorf("frontend's route configuration 80 has virtual hosts %v, want reviews and allow_any only", hosts)
	}
	if slices.Contains(listenerNames(frontend), "0.0.0.0_5432") {
		t.Errorf("frontend got db's port listener: %v", listenerNames(frontend))
	}

	// The two reviews sidecars share their namespace's Sidecar: the very
	// same outbound clusters, built once.
	v1 := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-v1-0.shop", "REDIRECT"), "default"))
	v2 := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-v2-0.shop", "REDIRECT"), "default"))
	if len(v1.Clusters) != len(v2.Clusters) || len(v1.Clusters) <= len(frontend.Clusters) {
		t.Fatalf("reviews sidecars: %d and %d clusters, frontend %d", len(v1.Clusters), len(v2.Clusters), len(frontend.Clusters))
	}
	last := len(v1.Clusters) - 1
	if v1.Clusters[last] != v2.Clusters[last] {
		t.Error("two sidecars with the same Sidecar do not share their outbound clusters")
	}
}

// TestIndexedSidecarFor: the index's lookup agrees with the model's.
func TestIndexedSidecarFor(t *testing.T) {
	data, err := os.ReadFile("testdata/in/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap := buildSnapshot(t, string(data))
	ix := NewIndex(snap, Options{})
	for _, w := range append(snap.Workloads, nil) {
		for _, ns := range []string{"shop", "data", "default", "istio-system"} {
			if w != nil && w.Namespace != ns {
				continue
			}
			if got, want := ix.sidecarFor(ns, w), snap.SidecarFor(ns, w); got != want {
				t.Errorf("namespace %s, workload %v: index says %v, model says %v", ns, w, got, want)
			}
		}
	}
}

// TestIndexedSidecarForPicksFirstByName: two Sidecars select a workload
// through different labels; the first in name order applies, as in the model.
func TestIndexedSidecarForPicksFirstByName(t *testing.T) {
	snap := buildSnapshot(t, `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w, namespace: shop}
spec: {address: 10.0.0.1, labels: {app: a, tier: web}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: b-by-app, namespace: shop}
spec: {workloadSelector: {labels: {app: a}}, egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a-by-tier, namespace: shop}
spec: {workloadSelector: {labels: {tier: web, app: a}}, egress: [{hosts: ["*/*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: 0-other, namespace: shop}
spec: {workloadSelector: {labels: {app: z}}, egress: [{hosts: ["*/*"]}]}
`)
	ix := NewIndex(snap, Options{})
	w := snap.Workloads[0]
	got, want := ix.sidecarFor("shop", w), snap.SidecarFor("shop", w)
	if want == nil || want.Name != "a-by-tier" || got != want {
		t.Errorf("index picks %v, model picks %v; want a-by-tier", got, want)
	}
}
