package mesh

import "testing"

func TestBuildPeerAuthenticationErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "bad values",
			yaml: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: typo}
spec: {mtls: {mode: STRIC}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: numbers}
spec:
  selector: {matchLabels: {app: my-app}}
  mtls: {mode: 7}
  portLevelMtls: {0: {mode: STRICT}, 70000: {mode: DISABLE}, 8080: {mode: 9}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: keys}
spec: {selector: {matchLabels: {app: my-app}}, portLevelMtls: {http: {mode: STRICT}, -1: {mode: STRICT}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: wildcard}
spec: {selector: {matchLabels: {app: "*", "": x}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: extra}
spec: {mtls: {mode: STRICT}, action: ALLOW}
`,
			want: []string{
				`error: test.yaml#1: PeerAuthentication default/typo: spec.mtls.mode: unknown value "STRIC", want one of UNSET, DISABLE, PERMISSIVE, STRICT; did you mean "STRICT"?`,
				`error: test.yaml#3: PeerAuthentication default/keys: spec.portLevelMtls.-1: must not be negative, got -1`,
				`error: test.yaml#3: PeerAuthentication default/keys: spec.portLevelMtls.http: want a whole number, got string "http"`,
				`error: test.yaml#5: PeerAuthentication default/extra: spec.action: unknown field (fields here: mtls, portLevelMtls, selector)`,
				`error: test.yaml#2: PeerAuthentication default/numbers: spec.mtls.mode: unknown mode 7, want one of UNSET, DISABLE, PERMISSIVE, STRICT`,
				`error: test.yaml#2: PeerAuthentication default/numbers: spec.portLevelMtls.0: port 0 out of range, want 1-65535`,
				`error: test.yaml#2: PeerAuthentication default/numbers: spec.portLevelMtls.8080.mode: unknown mode 9, want one of UNSET, DISABLE, PERMISSIVE, STRICT`,
				`error: test.yaml#2: PeerAuthentication default/numbers: spec.portLevelMtls.70000: port 70000 out of range, want 1-65535`,
				`error: test.yaml#4: PeerAuthentication default/wildcard: spec.selector.matchLabels: a label name must not be empty`,
				`error: test.yaml#4: PeerAuthentication default/wildcard: spec.selector.matchLabels.app: wildcards are not allowed in a selector (labels must match exactly)`,
			},
		},
		{
			name: "two policies without selector in a namespace, two in the mesh",
			yaml: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b-second}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-first}
spec: {selector: {}, mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: other, namespace: istio-system}
spec: {mtls: {mode: DISABLE}}
`,
			want: []string{
				`error: test.yaml#1: PeerAuthentication default/b-second: spec.selector: no selector, and namespace "default" already has a namespace-wide policy, PeerAuthentication default/a-first (test.yaml#2); the first in namespace/name order wins (Istio keeps the oldest)`,
				`error: test.yaml#4: PeerAuthentication istio-system/other: spec.selector: no selector in the root namespace, and the mesh already has a mesh-wide policy, PeerAuthentication istio-system/default (test.yaml#3); the first in namespace/name order wins (Istio keeps the oldest)`,
			},
			added: []string{"PeerAuthentication default/a-first", "PeerAuthentication istio-system/default"},
		},
		{
			name: "selectors that overlap",
			yaml: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a}
spec: {selector: {matchLabels: {app: my-app}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b}
spec: {selector: {matchLabels: {version: v2}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: c}
spec: {selector: {matchLabels: {app: my-app}}, mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: d, namespace: other}
spec: {selector: {matchLabels: {app: my-app}}, mtls: {mode: PERMISSIVE}}
`,
			want: []string{
				`warning: test.yaml#2: PeerAuthentication default/b: spec.selector: selects workload default/my-app-v2, which PeerAuthentication default/a (test.yaml#1) selects too; only one workload policy applies: minimesh uses the first in namespace/name order (Istio the oldest), so this one does not apply there; make the selectors disjoint`,
				`warning: test.yaml#3: PeerAuthentication default/c: spec.selector: selects workloads default/my-app-v1, default/my-app-v2, which PeerAuthentication default/a (test.yaml#1) selects too; only one workload policy applies: minimesh uses the first in namespace/name order (Istio the oldest), so this one does not apply there; make the selectors disjoint`,
			},
			added: []string{
				"PeerAuthentication default/a", "PeerAuthentication default/b",
				"PeerAuthentication default/c", "PeerAuthentication other/d",
			},
		},
	})
}

// TestMTLSModeOverlap checks that the first workload policy in name order
// applies to a workload two policies select.
func TestMTLSModeOverlap(t *testing.T) {
	snap, _ := buildYAML(t, `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b}
spec: {selector: {matchLabels: {version: v2}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a, namespace: other}
spec: {selector: {matchLabels: {version: v2}}, mtls: {mode: DISABLE}}
`+workloadEntries(map[string]map[string]string{"default/web-1": {"app": "web"}}), Options{})
	w := snap.Workloads[0]
	w.Labels["version"] = "v2"
	if got := snap.MTLSMode(w, 80); got != MTLSStrict {
		t.Errorf("MTLSMode = %s, want STRICT (default/a before default/b)", got)
	}
	w.Labels["app"] = "api"
	if got := snap.MTLSMode(w, 80); got != MTLSDisable {
		t.Errorf("MTLSMode = %s, want DISABLE (default/b; other/a is in another namespace)", got)
	}
}
