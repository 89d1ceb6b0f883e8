package mesh

import (
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDecodeDiagnostics checks the problems Decode finds in one document:
// the exact text, and whether the object is kept.
func TestDecodeDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
		kept bool
	}{
		{
			name: "other kinds are skipped",
			yaml: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 2}\n",
			want: []string{
				`info: f.yaml: Deployment shop/web: kind Deployment ignored`,
			},
		},
		{
			name: "Istio kinds minimesh does not read are skipped",
			yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {selector: {istio: ingressgateway}}\n",
			want: []string{
				`info: f.yaml: Gateway default/gw: kind Gateway ignored`,
			},
		},
		{
			name: "no kind",
			yaml: "replicas: 2\n",
			want: []string{
				`warning: f.yaml: kind: missing: not a Kubernetes object, ignored`,
			},
		},
		{
			name: "not a mapping",
			yaml: "- a\n- b\n",
			want: []string{
				`error: f.yaml: document is not a mapping (key: value), ignored`,
			},
		},
		{
			name: "missing name",
			yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {namespace: shop}\nspec: {hosts: [a]}\n",
			want: []string{
				`error: f.yaml: VirtualService: metadata.name: missing: every object needs a name`,
			},
		},
		{
			name: "metadata of the wrong type",
			yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: 42}\nspec: {hosts: [a]}\n",
			want: []string{
				`error: f.yaml: VirtualService: metadata.name: want a string, got 42`,
			},
		},
		{
			name: "misspelled fields",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  host: [a]
  http:
  - rout: [{destination: {host: a}}]
  - route: [{destination: {hots: a, weight: 10}}]
`,
			want: []string{
				`error: f.yaml: VirtualService default/vs: spec.host: unknown field; did you mean "hosts"?`,
				`error: f.yaml: VirtualService default/vs: spec.http[0].rout: unknown field; did you mean "route"?`,
				`error: f.yaml: VirtualService default/vs: spec.http[1].route[0].destination.hots: unknown field; did you mean "host"?`,
				`error: f.yaml: VirtualService default/vs: spec.http[1].route[0].destination.weight: unknown field (fields here: host, port, subset)`,
			},
		},
		{
			name: "wrong types",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: a.example.com
  ports: [{number: eighty, name: 80, targetPort: -1}]
  endpoints: [{address: 10.0.0.1, labels: {version: 2, canary: true}, weight: 1.5}]
  workloadSelector: [app]
`,
			want: []string{
				`error: f.yaml: ServiceEntry default/se: spec.endpoints[0].labels.canary: want a string, got true (quote it in YAML: "true")`,
				`error: f.yaml: ServiceEntry default/se: spec.endpoints[0].labels.version: want a string, got number 2 (quote it in YAML: "2")`,
				`error: f.yaml: ServiceEntry default/se: spec.endpoints[0].weight: want a whole number, got number 1.5`,
				`error: f.yaml: ServiceEntry default/se: spec.hosts: want a list, got string "a.example.com"`,
				`error: f.yaml: ServiceEntry default/se: spec.ports[0].name: want a string, got number 80 (quote it in YAML: "80")`,
				`error: f.yaml: ServiceEntry default/se: spec.ports[0].number: want a whole number, got string "eighty"`,
				`error: f.yaml: ServiceEntry default/se: spec.ports[0].targetPort: must not be negative, got -1`,
				`error: f.yaml: ServiceEntry default/se: spec.workloadSelector: want a mapping (key: value), got a list`,
			},
		},
		{
			name: "enum values and durations",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: a
  trafficPolicy:
    loadBalancer: {simple: round_robin}
    connectionPool: {tcp: {connectTimeout: 5 seconds}, http: {idleTimeout: 30}}
`,
			want: []string{
				`error: f.yaml: DestinationRule default/dr: spec.trafficPolicy.connectionPool.http.idleTimeout: want a duration such as "5s" or "100ms", got number 30`,
				`error: f.yaml: DestinationRule default/dr: spec.trafficPolicy.connectionPool.tcp.connectTimeout: want a duration such as "5s" or "100ms", got "5 seconds"`,
				`error: f.yaml: DestinationRule default/dr: spec.trafficPolicy.loadBalancer.simple: unknown value "round_robin", want one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST; did you mean "ROUND_ROBIN"?`,
			},
		},
		{
			name: "a field set twice",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [a]
  http:
  - match: [{uri: {exact: /a, prefix: /b}}]
    route: [{destination: {host: a}}]
    per_try_timeout: 1s
  - route: [{destination: {host: a}}]
    retries: {perTryTimeout: 1s, per_try_timeout: 2s}
`,
			want: []string{
				`error: f.yaml: VirtualService default/vs: spec.http[0].match[0].uri: set only one of exact, prefix, regex (found exact and prefix)`,
				`error: f.yaml: VirtualService default/vs: spec.http[0].per_try_timeout: unknown field`,
				`error: f.yaml: VirtualService default/vs: spec.http[1].retries.per_try_timeout: same field as "perTryTimeout"; set it once`,
			},
		},
		{
			name: "unsupported fields are warnings and the object is kept",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [a]
  exportTo: ["."]
  http:
  - match: [{headers: {x-user: {exact: a}}, ignoreUriCase: true}]
    route:
    - destination: {host: a}
      headers: {request: {set: {x-canary: "true"}}}
    fault: {delay: {fixedDelay: 5s, percentage: {value: 10}}}
    mirror: {host: b}
    corsPolicy: {allowOrigins: [{exact: "*"}]}
    retries: {attempts: 3, retryRemoteLocalities: true}
`,
			want: []string{
				`warning: f.yaml: VirtualService default/vs: spec.http[0].match[0].ignoreUriCase: not supported by minimesh; this match block is skipped (it never matches)`,
				`warning: f.yaml: VirtualService default/vs: spec.http[0].route[0].headers: not supported by minimesh, ignored`,
				`warning: f.yaml: VirtualService default/vs: spec.http[0].retries.retryRemoteLocalities: not supported by minimesh, ignored`,
				`warning: f.yaml: VirtualService default/vs: spec.http[0].fault: not supported by minimesh, ignored`,
				`warning: f.yaml: VirtualService default/vs: spec.http[0].mirror: not supported by minimesh, ignored`,
				`warning: f.yaml: VirtualService default/vs: spec.http[0].corsPolicy: not supported by minimesh, ignored`,
				`warning: f.yaml: VirtualService default/vs: spec.exportTo: not supported by minimesh, ignored`,
			},
			kept: true,
		},
		{
			name: "unsupported fields of a ServiceEntry and a WorkloadEntry",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a.example.com]
  addresses: [240.0.0.1]
  subjectAltNames: ["spiffe://cluster.local/ns/default/sa/a"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, locality: us-east1/a, network: n1}]
`,
			want: []string{
				`warning: f.yaml: ServiceEntry default/se: spec.endpoints[0].network: not supported by minimesh, ignored`,
				`warning: f.yaml: ServiceEntry default/se: spec.endpoints[0].locality: not supported by minimesh, ignored`,
				`warning: f.yaml: ServiceEntry default/se: spec.subjectAltNames: not supported by minimesh, ignored`,
			},
			kept: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, diags, err := Decode("f.yaml", []byte(tt.yaml), "default")
			if err != nil {
				t.Fatal(err)
			}
			// PRINT_DIAGS=1 prints what came out as Go literals, to help
			// write a new case; read every line before pasting it.
			if os.Getenv("PRINT_DIAGS") != "" {
				for _, d := range render(diags) {
					fmt.Printf("\t\t\t\t%q,\n", d)
				}
			}
			if diff := cmp.Diff(tt.want, render(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if kept := len(objs) == 1; kept != tt.kept {
				t.Errorf("object kept = %v, want %v", kept, tt.kept)
			}
		})
	}
}
