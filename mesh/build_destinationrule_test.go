package mesh

import "testing"

func TestBuildWorkloadEntryErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "address and ports",
			yaml: `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: no-address}
spec: {labels: {app: my-app}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bad-address}
spec: {address: "10.0.0.300", ports: {http: 0, admin: 70000}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm, namespace: legacy}
spec: {address: vm-1.example.com, network: west}
`,
			want: []string{
				`warning: test.yaml#3: WorkloadEntry legacy/vm: spec.network: not supported by minimesh, ignored`,
				`error: test.yaml#2: WorkloadEntry default/bad-address: spec.address: "10.0.0.300" is neither an IP address nor a DNS name`,
				`error: test.yaml#2: WorkloadEntry default/bad-address: spec.ports.admin: port 70000 out of range, want 1-65535`,
				`error: test.yaml#2: WorkloadEntry default/bad-address: spec.ports.http: port 0 out of range, want 1-65535`,
				`error: test.yaml#1: WorkloadEntry default/no-address: spec.address: missing: an address is required`,
			},
			added: []string{"Workload legacy/vm"},
		},
	})
}

func TestBuildDestinationRuleErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "missing host",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: no-host}
spec: {subsets: [{name: v1, labels: {version: v1}}]}
`,
			want: []string{
				`error: test.yaml: DestinationRule default/no-host: spec.host: missing: the host the rule applies to is required`,
			},
		},
		{
			name: "bad subsets",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: subsets}
spec:
  host: other.example.com
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v1, labels: {version: v2}}
  - {labels: {version: v3}}
  - {name: V4, labels: {version: v4}}
  - {name: v5}
`,
			want: []string{
				`error: test.yaml: DestinationRule default/subsets: spec.subsets[1].name: subset "v1" is also spec.subsets[0]; subset names must be unique`,
				`error: test.yaml: DestinationRule default/subsets: spec.subsets[2].name: missing: every subset needs a name`,
				`error: test.yaml: DestinationRule default/subsets: spec.subsets[3].name: "V4" is not a valid subset name (lower case letters, digits and '-', like a DNS label)`,
				`error: test.yaml: DestinationRule default/subsets: spec.subsets[4].labels: missing: a subset selects endpoints by labels`,
			},
		},
		{
			name: "host matches no service",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: nowhere}
spec: {host: my-ap, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
`,
			want: []string{
				`warning: test.yaml: DestinationRule default/nowhere: spec.host: "my-ap.default.svc.cluster.local" matches no service (known hosts: my-app.default.svc.cluster.local); did you mean "my-app.default.svc.cluster.local"?`,
			},
			added: []string{"DestinationRule default/nowhere: my-ap.default.svc.cluster.local"},
		},
		{
			name: "second rule for a host",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: z-second}
spec: {host: my-app.default.svc.cluster.local}
`,
			want: []string{
				`error: test.yaml: DestinationRule default/z-second: spec.host: host "my-app.default.svc.cluster.local" already has DestinationRule default/my-app-dr (canary.yaml#4); the first in namespace/name order wins`,
			},
		},
		{
			name: "subset selects nothing",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec: {hosts: [db.data.svc.cluster.local], location: MESH_INTERNAL, resolution: STATIC, ports: [{number: 5432, name: tcp, protocol: TCP}], endpoints: [{address: 10.2.0.1, labels: {role: primary}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: data}
spec: {host: db, subsets: [{name: primary, labels: {role: primary}}, {name: replica, labels: {role: replica}}]}
`,
			want: []string{
				`warning: test.yaml#2: DestinationRule data/db: spec.subsets[1].labels: subset "replica" selects no endpoint of db.data.svc.cluster.local (yet)`,
			},
			added: []string{
				`DestinationRule data/db: db.data.svc.cluster.local`,
				`Service db.data.svc.cluster.local (data/db)`,
			},
		},
		{
			name: "bad policy values",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: policy}
spec:
  host: policy.example.com
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: -1, connectTimeout: -1s}
      http: {maxRetries: -3}
    outlierDetection: {maxEjectionPercent: 150, interval: -5m}
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {outlierDetection: {consecutive5xxErrors: 0}}
`,
			want: []string{
				`error: test.yaml: DestinationRule default/policy: spec.trafficPolicy.connectionPool.tcp.maxConnections: must not be negative, got -1`,
				`error: test.yaml: DestinationRule default/policy: spec.trafficPolicy.connectionPool.tcp.connectTimeout: must not be negative, got -1s`,
				`error: test.yaml: DestinationRule default/policy: spec.trafficPolicy.connectionPool.http.maxRetries: must not be negative, got -3`,
				`error: test.yaml: DestinationRule default/policy: spec.trafficPolicy.outlierDetection.maxEjectionPercent: 150 is not a percentage, want 0-100`,
				`error: test.yaml: DestinationRule default/policy: spec.trafficPolicy.outlierDetection.interval: must not be negative, got -5m0s`,
				`warning: test.yaml: DestinationRule default/policy: spec.subsets[0].trafficPolicy.outlierDetection.consecutive5xxErrors: 0 turns 5xx ejection off in Istio; minimesh cannot express that yet and leaves Envoy's default (5)`,
			},
		},
		{
			name: "unsupported policy fields are warnings",
			yaml: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: my-app-extra, namespace: other}
spec:
  host: my-app.default.svc.cluster.local
  exportTo: ["."]
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    portLevelSettings: [{port: {number: 80}, loadBalancer: {simple: RANDOM}}]
    outlierDetection: {consecutive5xxErrors: 0}
`,
			want: []string{
				`warning: test.yaml: DestinationRule other/my-app-extra: spec.trafficPolicy.loadBalancer.consistentHash: not supported by minimesh, ignored`,
				`warning: test.yaml: DestinationRule other/my-app-extra: spec.trafficPolicy.portLevelSettings: not supported by minimesh, ignored`,
				`warning: test.yaml: DestinationRule other/my-app-extra: spec.exportTo: not supported by minimesh, ignored`,
				`warning: test.yaml: DestinationRule other/my-app-extra: spec.trafficPolicy.outlierDetection.consecutive5xxErrors: 0 turns 5xx ejection off in Istio; minimesh cannot express that yet and leaves Envoy's default (5)`,
				`error: test.yaml: DestinationRule other/my-app-extra: spec.host: host "my-app.default.svc.cluster.local" already has DestinationRule default/my-app-dr (canary.yaml#4); the first in namespace/name order wins`,
			},
		},
	})
}
