package mesh

import "testing"

func TestBuildVirtualServiceErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "weights",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: weights}
spec:
  hosts: [my-app.example.com]
  http:
  - route:
    - {destination: {host: my-app, subset: v1}, weight: 80}
    - {destination: {host: my-app, subset: v2}, weight: 10}
  - route:
    - {destination: {host: my-app}, weight: -10}
    - {destination: {host: my-app}, weight: 110}
  - route:
    - {destination: {host: my-app}, weight: 50}
`,
			want: []string{
				`warning: test.yaml: VirtualService default/weights: spec.hosts[0]: "my-app.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`error: test.yaml: VirtualService default/weights: spec.http[0].route: weights sum to 90, want 100`,
				`error: test.yaml: VirtualService default/weights: spec.http[1].route[0].weight: must not be negative, got -10`,
				`error: test.yaml: VirtualService default/weights: spec.http[2].route: weights sum to 50, want 100`,
			},
		},
		{
			name: "unknown host, subset and port",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: destinations}
spec:
  hosts: [my-app]
  http:
  - route:
    - {destination: {host: my-ap}, weight: 50}
    - {destination: {host: my-app, subset: v3}, weight: 25}
    - {destination: {host: my-app, subset: v1, port: {number: 8080}}, weight: 25}
`,
			want: []string{
				`error: test.yaml: VirtualService default/destinations: spec.http[0].route[0].destination.host: route to an unknown host "my-ap" (resolved to my-ap.default.svc.cluster.local; known hosts: my-app.default.svc.cluster.local); did you mean "my-app.default.svc.cluster.local"?`,
				`error: test.yaml: VirtualService default/destinations: spec.http[0].route[1].destination.subset: subset "v3" is not defined by DestinationRule default/my-app-dr (defined: v1, v2); did you mean "v1"?`,
				`error: test.yaml: VirtualService default/destinations: spec.http[0].route[2].destination.port.number: service my-app.default.svc.cluster.local has no port 8080 (ports: 80)`,
			},
		},
		{
			name: "subset without a DestinationRule",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec: {hosts: [db.example.com], resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db.example.com]
  http: [{route: [{destination: {host: db.example.com, subset: primary}}]}]
`,
			want: []string{
				`error: test.yaml#2: VirtualService default/db: spec.http[0].route[0].destination.subset: subset "primary" of db.example.com: no DestinationRule defines subsets for that host`,
			},
			added: []string{"Service db.example.com (default/db)"},
		},
		{
			name: "bad matches",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: matches}
spec:
  hosts: [matches.example.com]
  http:
  - match:
    - uri: {regex: "/api/(v1"}
      headers:
        X-User: {exact: a}
        x-user: {exact: b}
        x-present: {}
      method: {regex: "GET|PO[ST"}
    - uri: {}
    route: [{destination: {host: my-app}}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/matches: spec.hosts[0]: "matches.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				"error: test.yaml: VirtualService default/matches: spec.http[0].match[0].uri.regex: not a valid RE2 regular expression: missing closing ): `/api/(v1`",
				"error: test.yaml: VirtualService default/matches: spec.http[0].match[0].method.regex: not a valid RE2 regular expression: missing closing ]: `[ST`",
				`error: test.yaml: VirtualService default/matches: spec.http[0].match[0].headers.x-present: empty match: set exact, prefix or regex (presence matches are not supported by minimesh; regex: ".*" requires the header to be present)`,
				`error: test.yaml: VirtualService default/matches: spec.http[0].match[0].headers.x-user: same header as "X-User" (header names are case-insensitive)`,
				`error: test.yaml: VirtualService default/matches: spec.http[0].match[1].uri: empty match: set exact, prefix or regex`,
			},
		},
		{
			name: "durations and retries",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: retries}
spec:
  hosts: [retries.example.com]
  http:
  - route: [{destination: {host: my-app}}]
    timeout: -1s
    retries: {attempts: -2, perTryTimeout: -100ms, retryOn: gateway-error}
`,
			want: []string{
				`warning: test.yaml: VirtualService default/retries: spec.hosts[0]: "retries.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`error: test.yaml: VirtualService default/retries: spec.http[0].timeout: must not be negative, got -1s`,
				`error: test.yaml: VirtualService default/retries: spec.http[0].retries.attempts: must not be negative, got -2`,
				`error: test.yaml: VirtualService default/retries: spec.http[0].retries.perTryTimeout: must not be negative, got -100ms`,
			},
		},
		{
			name: "rule without a route",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: redirect}
spec:
  hosts: [redirect.example.com]
  http:
  - redirect: {uri: /new}
`,
			want: []string{
				`warning: test.yaml: VirtualService default/redirect: spec.http[0].redirect: not supported by minimesh, ignored`,
				`warning: test.yaml: VirtualService default/redirect: spec.hosts[0]: "redirect.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`error: test.yaml: VirtualService default/redirect: spec.http[0].route: missing: every http rule needs a route with at least one destination (redirect, directResponse and delegate are not supported by minimesh)`,
			},
		},
		{
			name: "host routed twice: the first by namespace/name wins",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second}
spec:
  hosts: [my-app, my-app.default.svc.cluster.local, other.example.com]
  http: [{route: [{destination: {host: my-app, subset: v2}}]}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/second: spec.hosts[1]: "my-app.default.svc.cluster.local" is the same host as spec.hosts[0] (my-app.default.svc.cluster.local)`,
				`warning: test.yaml: VirtualService default/second: spec.hosts[2]: "other.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`error: test.yaml: VirtualService default/second: spec.hosts[0]: host "my-app.default.svc.cluster.local" is already routed by VirtualService default/my-app-vs (canary.yaml#5); the first in namespace/name order wins (Istio merges VirtualServices only on gateways)`,
			},
			added: []string{"VirtualService default/second: other.example.com"},
		},
		{
			name: "host matches no service, and bad hosts",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nowhere}
spec:
  hosts: [nowhere, "*.example.com"]
  http: [{route: [{destination: {host: my-app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: star}
spec:
  hosts: ["*", "bad_host!"]
  http: [{route: [{destination: {host: my-app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: no-hosts}
spec:
  http: [{route: [{destination: {host: my-app}}]}]
`,
			want: []string{
				`error: test.yaml#3: VirtualService default/no-hosts: spec.hosts: missing: a VirtualService needs at least one host`,
				`warning: test.yaml#1: VirtualService default/nowhere: spec.hosts[0]: "nowhere" matches no service (resolved to nowhere.default.svc.cluster.local; known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml#1: VirtualService default/nowhere: spec.hosts[1]: "*.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`error: test.yaml#2: VirtualService default/star: spec.hosts[0]: the host "*" is not allowed in a VirtualService for the mesh (Istio rejects it too): name the services`,
				`error: test.yaml#2: VirtualService default/star: spec.hosts[1]: "bad_host!" is not a valid host name`,
			},
			added: []string{"VirtualService default/nowhere: nowhere.default.svc.cluster.local *.example.com"},
		},
		{
			name: "gateways",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [edge.example.com]
  gateways: [istio-system/ingress]
  http: [{route: [{destination: {host: my-app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: both}
spec:
  hosts: [both.example.com]
  gateways: [istio-system/ingress, mesh]
  http: [{route: [{destination: {host: my-app}}]}]
`,
			want: []string{
				`warning: test.yaml#2: VirtualService default/both: spec.gateways: gateways istio-system/ingress not supported by minimesh, ignored; the rules apply to the mesh`,
				`warning: test.yaml#2: VirtualService default/both: spec.hosts[0]: "both.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml#1: VirtualService default/edge: spec.gateways: applies only to gateways (istio-system/ingress), which minimesh does not implement: VirtualService ignored (add "mesh" to apply it to sidecars)`,
			},
			added: []string{"VirtualService default/both: both.example.com"},
		},
		{
			name: "unsupported match conditions skip the block",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: testers}
spec:
  hosts: [testers.example.com]
  http:
  - match: [{sourceLabels: {app: tester}}]
    route: [{destination: {host: my-app, subset: v2}}]
  - match: [{queryParams: {debug: {exact: "1"}}}, {uri: {prefix: /debug}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 10}}}
    route: [{destination: {host: my-app, subset: v2}}]
  - route: [{destination: {host: my-app, subset: v1}}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/testers: spec.http[0].match[0].sourceLabels: not supported by minimesh; this match block is skipped (it never matches)`,
				`warning: test.yaml: VirtualService default/testers: spec.http[1].match[0].queryParams: not supported by minimesh; this match block is skipped (it never matches)`,
				`warning: test.yaml: VirtualService default/testers: spec.http[1].fault: not supported by minimesh, ignored`,
				`warning: test.yaml: VirtualService default/testers: spec.hosts[0]: "testers.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml: VirtualService default/testers: spec.http[0]: none of its match blocks can ever match: rule skipped`,
			},
			added: []string{"VirtualService default/testers: testers.example.com"},
		},
		{
			name: "match blocks for gateways only",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-rules}
spec:
  hosts: [my-app.example.com]
  http:
  - match: [{uri: {prefix: /admin}, gateways: [istio-system/ingress]}]
    route: [{destination: {host: my-app, subset: v2}}]
  - match: [{uri: {prefix: /api}, gateways: [mesh, istio-system/ingress]}]
    route: [{destination: {host: my-app, subset: v1}}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/edge-rules: spec.hosts[0]: "my-app.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml: VirtualService default/edge-rules: spec.http[0].match[0].gateways: this match block applies only to gateways (istio-system/ingress), never to sidecars: skipped`,
				`warning: test.yaml: VirtualService default/edge-rules: spec.http[0]: none of its match blocks can ever match: rule skipped`,
			},
			added: []string{"VirtualService default/edge-rules: my-app.example.com"},
		},
		{
			name: "every rule skipped",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: testers-only}
spec:
  hosts: [my-app.example.com]
  http:
  - match: [{sourceLabels: {app: tester}}]
    route: [{destination: {host: my-app, subset: v2}}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/testers-only: spec.http[0].match[0].sourceLabels: not supported by minimesh; this match block is skipped (it never matches)`,
				`warning: test.yaml: VirtualService default/testers-only: spec.hosts[0]: "my-app.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml: VirtualService default/testers-only: spec.http[0]: none of its match blocks can ever match: rule skipped`,
				`warning: test.yaml: VirtualService default/testers-only: spec.http: no http rule minimesh can apply (it implements http rules only): VirtualService ignored`,
			},
		},
		{
			name: "tcp only",
			yaml: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp}
spec:
  hosts: [tcp.example.com]
  tcp: [{route: [{destination: {host: my-app}}]}]
`,
			want: []string{
				`warning: test.yaml: VirtualService default/tcp: spec.tcp: not supported by minimesh, ignored`,
				`warning: test.yaml: VirtualService default/tcp: spec.hosts[0]: "tcp.example.com" matches no service (known hosts: my-app.default.svc.cluster.local)`,
				`warning: test.yaml: VirtualService default/tcp: spec.http: no http rule minimesh can apply (it implements http rules only): VirtualService ignored`,
			},
		},
	})
}
