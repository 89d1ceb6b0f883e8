// Package synth generates synthetic meshes as Istio YAML, for benchmarks
// and load tests: S services, each with two versions (one WorkloadEntry
// each), a DestinationRule with subsets v1/v2 and a 90/10 VirtualService.
package synth

import (
	"bytes"
	"fmt"
)

// YAML returns a mesh of n services in namespace ns as one multi-document
// YAML file. Workload addresses are 10.x.y.z, unique per workload.
func YAML(n int, ns string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s.%[2]s.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: %[1]s}}
---
`, name, ns)
		for v := 1; v <= 2; v++ {
			idx := 2*i + v
			fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: %[1]s-v%[3]d, namespace: %[2]s}
spec:
  address: 10.%[4]d.%[5]d.%[6]d
  labels: {app: %[1]s, version: v%[3]d}
  serviceAccount: %[1]s
---
`, name, ns, v, (idx>>16)&255, (idx>>8)&255, idx&255)
		}
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  host: %[1]s
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s]
  http:
  - route:
    - {destination: {host: %[1]s, subset: v1}, weight: 90}
    - {destination: {host: %[1]s, subset: v2}, weight: 10}
---
`, name, ns)
	}
	return b.Bytes()
}
