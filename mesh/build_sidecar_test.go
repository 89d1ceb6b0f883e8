package mesh

import (
	"strings"
	"testing"
)

const sidecarMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: shop}
spec:
  hosts: [a.shop.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: shop}
spec:
  hosts: [b.shop.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec:
  hosts: [db.data.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.0.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: istio-system}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a-0, namespace: shop}
spec: {address: 10.0.0.1, labels: {app: a}, serviceAccount: a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-0, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: b}, serviceAccount: b}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-0, namespace: data}
spec: {address: 10.0.1.1, labels: {app: db}, serviceAccount: db}
---
# The mesh-wide default: own namespace and istio-system.
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
---
# In shop, workload a only calls the database.
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: shop}
spec:
  workloadSelector: {labels: {app: a}}
  egress: [{hosts: ["data/db.data.svc.cluster.local"]}]
`

func TestSidecarScoping(t *testing.T) {
	snap, diags := buildYAML(t, sidecarMesh, Options{})
	for _, d := range diags {
		if strings.HasPrefix(d, "error") {
			t.Fatalf("unexpected: %v", d)
		}
	}
	workload := func(id string) *Workload {
		for _, w := range snap.Workloads {
			if w.ID() == id {
				return w
			}
		}
		t.Fatalf("no workload %s", id)
		return nil
	}
	imports := func(ns string, w *Workload) []string {
		sc := snap.SidecarFor(ns, w)
		if sc == nil {
			return []string{"(whole mesh)"}
		}
		var out []string
		for _, svc := range snap.Services {
			if sc.Imports(svc, ns) {
				out = append(out, svc.Hostname)
			}
		}
		return out
	}
	for _, c := range []struct {
		ns   string
		w    *Workload
		want string
	}{
		{"shop", workload("a-0.shop"), "db.data.svc.cluster.local"},
		{"shop", workload("b-0.shop"), "a.shop.svc.cluster.local api.example.com b.shop.svc.cluster.local"},
		{"data", workload("db-0.data"), "api.example.com db.data.svc.cluster.local"},
		{"other", nil, "api.example.com"},
	} {
		if got := strings.Join(imports(c.ns, c.w), " "); got != c.want {
			name := "no workload"
			if c.w != nil {
				name = c.w.ID()
			}
			t.Errorf("proxy in %s (%s) imports %q, want %q", c.ns, name, got, c.want)
		}
	}
}

func TestSidecarErrors(t *testing.T) {
	_, diags := buildYAML(t, `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: bad, namespace: shop}
spec:
  egress: [{hosts: ["db.data.svc.cluster.local", "/x", "data/", "data/not a host"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: empty, namespace: other}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sel, namespace: istio-system}
spec:
  workloadSelector: {labels: {app: x}}
  egress: [{hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: one, namespace: twice}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: two, namespace: twice}
spec: {egress: [{hosts: ["*/*"]}]}
`, Options{})
	got := diags
	for _, want := range []string{
		`Sidecar shop/bad: spec.egress[0].hosts[0]: "db.data.svc.cluster.local": want "namespace/host"`,
		`Sidecar shop/bad: spec.egress[0].hosts[1]: "/x": empty namespace`,
		`Sidecar shop/bad: spec.egress[0].hosts[2]: "data/": empty host`,
		`Sidecar shop/bad: spec.egress[0].hosts[3]: "data/not a host": "not a host" is not a DNS name`,
		`Sidecar other/empty: spec.egress: missing`,
		`Sidecar istio-system/sel: spec.workloadSelector: a Sidecar in the root namespace`,
		`Sidecar twice/two: spec.workloadSelector: namespace "twice" already has Sidecar one without selector`,
	} {
		if !containsPrefix(got, want) {
			t.Errorf("missing diagnostic %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func containsPrefix(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}
