package mesh

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tlsServices declares the hosts the DestinationRules of the TLS tests
// apply to, so that no rule is warned about matching nothing.
const tlsServices = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls}
spec:
  hosts: [a.example.com, b.example.com, c.example.com, d.example.com, e.example.com]
  resolution: STATIC
  ports: [{number: 443, name: tcp-tls, protocol: TCP}]
  endpoints:
  - {address: 10.3.0.1, labels: {version: v1}}
  - {address: 10.3.0.2, labels: {version: v2}}
`

// tlsServiceContents is what tlsServices adds to a snapshot.
var tlsServiceContents = []string{
	"Service a.example.com (default/tls)", "Service b.example.com (default/tls)",
	"Service c.example.com (default/tls)", "Service d.example.com (default/tls)",
	"Service e.example.com (default/tls)",
}

// TestBuildClientTLS checks each TLS mode in the model, and the subset's
// tls put over the rule's whole.
func TestBuildClientTLS(t *testing.T) {
	snap, diags := buildYAML(t, tlsServices+`
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec:
  host: a.example.com
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    tls: {mode: ISTIO_MUTUAL, sni: a.internal, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/a"]}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls:
        mode: MUTUAL
        clientCertificate: /certs/client.pem
        privateKey: /certs/client-key.pem
        caCertificates: /certs/ca.pem
        subjectAltNames: [a.example.com]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b.example.com, trafficPolicy: {tls: {mode: SIMPLE, sni: b.example.com}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c}
spec: {host: c.example.com, trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec: {host: d.example.com, trafficPolicy: {tls: {}}}
`, Options{})
	if len(diags) != 0 {
		t.Errorf("unexpected diagnostics: %q", diags)
	}
	ruleTLS := &ClientTLS{
		Mode:            TLSIstioMutual,
		SNI:             "a.internal",
		SubjectAltNames: []string{"spiffe://cluster.local/ns/default/sa/a"},
	}
	v2TLS := &ClientTLS{
		Mode:              TLSMutual,
		ClientCertificate: "/certs/client.pem",
		PrivateKey:        "/certs/client-key.pem",
		CACertificates:    "/certs/ca.pem",
		SubjectAltNames:   []string{"a.example.com"},
	}
	rulePolicy := &TrafficPolicy{LoadBalancer: LBRandom, TLS: ruleTLS}
	wantA := &DestinationRule{
		Name:          "a",
		Namespace:     "default",
		Host:          "a.example.com",
		TrafficPolicy: rulePolicy,
		Subsets: []Subset{
			{Name: "v1", Labels: map[string]string{"version": "v1"}, TrafficPolicy: rulePolicy},
			{Name: "v2", Labels: map[string]string{"version": "v2"}, TrafficPolicy: &TrafficPolicy{LoadBalancer: LBRandom, TLS: v2TLS}},
		},
		Source: Ref{Kind: "DestinationRule", Namespace: "default", Name: "a", Source: "test.yaml#2"},
	}
	if diff := cmp.Diff(wantA, findDR(snap, "default", "a")); diff != "" {
		t.Errorf("DestinationRule a (-want +got):\n%s", diff)
	}
	for name, want := range map[string]*ClientTLS{
		"b": {Mode: TLSSimple, SNI: "b.example.com"},
		"c": {Mode: TLSSimple, InsecureSkipVerify: true},
		"d": {Mode: TLSDisable},
	} {
		dr := findDR(snap, "default", name)
		if dr == nil {
			t.Errorf("DestinationRule %s missing", name)
			continue
		}
		if diff := cmp.Diff(want, dr.TrafficPolicy.TLS); diff != "" {
			t.Errorf("DestinationRule %s tls (-want +got):\n%s", name, diff)
		}
	}
}

func TestBuildClientTLSErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "errors",
			yaml: tlsServices + `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a.example.com, trafficPolicy: {tls: {mode: MUTUAL, caCertificates: /ca.pem}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b.example.com, trafficPolicy: {tls: {mode: MUTUAL, credentialName: b-secret}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c}
spec:
  host: c.example.com
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: SIMPLE, credentialName: c-secret, caCertificates: /ca.pem}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec: {host: d.example.com, trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [d.example.com]}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: e}
spec: {host: e.example.com, trafficPolicy: {tls: {mode: 9}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: f}
spec: {host: f.example.com, trafficPolicy: {tls: {mode: MUTAL}}}
`,
			want: []string{
				`warning: test.yaml#3: DestinationRule default/b: spec.trafficPolicy.tls.credentialName: Kubernetes secrets are not supported by minimesh, ignored; use clientCertificate, privateKey and caCertificates (files)`,
				`warning: test.yaml#4: DestinationRule default/c: spec.subsets[0].trafficPolicy.tls.credentialName: Kubernetes secrets are not supported by minimesh, ignored; use clientCertificate, privateKey and caCertificates (files)`,
				`error: test.yaml#7: DestinationRule default/f: spec.trafficPolicy.tls.mode: unknown value "MUTAL", want one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL; did you mean "MUTUAL"?`,
				`error: test.yaml#2: DestinationRule default/a: spec.trafficPolicy.tls.clientCertificate: missing: mode MUTUAL needs the client certificate (a PEM file)`,
				`error: test.yaml#2: DestinationRule default/a: spec.trafficPolicy.tls.privateKey: missing: mode MUTUAL needs the client's private key (a PEM file)`,
				`error: test.yaml#3: DestinationRule default/b: spec.trafficPolicy.tls.clientCertificate: missing: mode MUTUAL needs the client certificate (a PEM file)`,
				`error: test.yaml#3: DestinationRule default/b: spec.trafficPolicy.tls.privateKey: missing: mode MUTUAL needs the client's private key (a PEM file)`,
				`error: test.yaml#4: DestinationRule default/c: spec.subsets[0].trafficPolicy.tls.credentialName: set either credentialName or the certificate files (clientCertificate, privateKey, caCertificates), not both (Istio rejects this too)`,
				`error: test.yaml#5: DestinationRule default/d: spec.trafficPolicy.tls.insecureSkipVerify: true, yet caCertificates or subjectAltNames say how to verify the server; set one or the other (Istio rejects this too)`,
				`error: test.yaml#6: DestinationRule default/e: spec.trafficPolicy.tls.mode: unknown mode 9, want one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL`,
			},
			added: tlsServiceContents,
		},
		{
			name: "warnings",
			yaml: tlsServices + `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a.example.com, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem, caCertificates: /ca.pem, insecureSkipVerify: true, sni: a}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b.example.com, trafficPolicy: {tls: {sni: b, subjectAltNames: [b]}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c}
spec: {host: c.example.com, trafficPolicy: {tls: {mode: SIMPLE, privateKey: /k.pem, caCrl: /crl.pem}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec:
  host: d.example.com
  trafficPolicy:
    portLevelSettings: [{port: {number: 443}, tls: {mode: SIMPLE}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: e}
spec: {host: e.example.com, trafficPolicy: {tls: {mode: SIMPLE, credentialName: e-secret}}}
`,
			want: []string{
				`warning: test.yaml#4: DestinationRule default/c: spec.trafficPolicy.tls.caCrl: not supported by minimesh, ignored`,
				`warning: test.yaml#5: DestinationRule default/d: spec.trafficPolicy.portLevelSettings: not supported by minimesh, ignored`,
				`warning: test.yaml#6: DestinationRule default/e: spec.trafficPolicy.tls.credentialName: Kubernetes secrets are not supported by minimesh, ignored; use clientCertificate, privateKey and caCertificates (files)`,
				`warning: test.yaml#2: DestinationRule default/a: spec.trafficPolicy.tls.clientCertificate: ignored with mode ISTIO_MUTUAL: the certificates minimesh issues are used, and the server's identity is always verified`,
				`warning: test.yaml#2: DestinationRule default/a: spec.trafficPolicy.tls.caCertificates: ignored with mode ISTIO_MUTUAL: the certificates minimesh issues are used, and the server's identity is always verified`,
				`warning: test.yaml#2: DestinationRule default/a: spec.trafficPolicy.tls.insecureSkipVerify: ignored with mode ISTIO_MUTUAL: the certificates minimesh issues are used, and the server's identity is always verified`,
				`warning: test.yaml#3: DestinationRule default/b: spec.trafficPolicy.tls.sni: ignored with mode DISABLE (no TLS)`,
				`warning: test.yaml#3: DestinationRule default/b: spec.trafficPolicy.tls.subjectAltNames: ignored with mode DISABLE (no TLS)`,
				`warning: test.yaml#4: DestinationRule default/c: spec.trafficPolicy.tls.privateKey: ignored with mode SIMPLE: only MUTUAL presents a client certificate`,
			},
			added: append([]string{
				"DestinationRule default/a: a.example.com", "DestinationRule default/b: b.example.com",
				"DestinationRule default/c: c.example.com", "DestinationRule default/d: d.example.com",
				"DestinationRule default/e: e.example.com",
			}, tlsServiceContents...),
		},
	})
}

// TestBuildClientTLSClearsIgnoredFields checks that what a warning says is
// ignored is not in the model either.
func TestBuildClientTLSClearsIgnoredFields(t *testing.T) {
	snap, _ := buildYAML(t, tlsServices+`
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a.example.com, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, insecureSkipVerify: true, sni: a, subjectAltNames: [a]}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: b.example.com, trafficPolicy: {tls: {mode: DISABLE, caCertificates: /ca.pem, sni: b, insecureSkipVerify: true}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c}
spec: {host: c.example.com, trafficPolicy: {tls: {mode: SIMPLE, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}}}
`, Options{})
	for name, want := range map[string]*ClientTLS{
		"a": {Mode: TLSIstioMutual, SNI: "a", SubjectAltNames: []string{"a"}},
		"b": {Mode: TLSDisable},
		"c": {Mode: TLSSimple, CACertificates: "/ca.pem"},
	} {
		if diff := cmp.Diff(want, findDR(snap, "default", name).TrafficPolicy.TLS); diff != "" {
			t.Errorf("DestinationRule %s tls (-want +got):\n%s", name, diff)
		}
	}
}
