package mesh

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildServiceEntryErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "short host",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: short}
spec: {hosts: [reviews], location: MESH_INTERNAL, ports: [{number: 80, name: http, protocol: HTTP}], endpoints: [{address: 10.0.1.1}]}
`,
			want: []string{
				`warning: test.yaml: ServiceEntry default/short: spec.hosts[0]: "reviews" is a short name; ServiceEntry hosts are taken literally, but VirtualServices and DestinationRules expand "reviews" to "reviews.default.svc.cluster.local": write that here`,
			},
			added: []string{"Service reviews (default/short)"},
		},
		{
			name: "no hosts, no ports",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty}
spec: {resolution: STATIC, endpoints: [{address: 10.0.1.1}]}
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/empty: spec.hosts: missing: a ServiceEntry needs at least one host`,
				`error: test.yaml: ServiceEntry default/empty: spec.ports: missing: a ServiceEntry needs at least one port`,
			},
		},
		{
			name: "bad ports",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ports}
spec:
  hosts: [ports.example.com]
  resolution: DNS
  ports:
  - {number: 0, name: zero, protocol: TCP}
  - {number: 80, name: http, protocol: HTTP, targetPort: 70000}
  - {number: 80, name: http, protocol: HTTP}
  - {number: 81, protocol: TCP}
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/ports: spec.ports[0].number: port 0 out of range, want 1-65535`,
				`error: test.yaml: ServiceEntry default/ports: spec.ports[1].targetPort: port 70000 out of range, want 1-65535`,
				`error: test.yaml: ServiceEntry default/ports: spec.ports[2].number: port 80 is also spec.ports[1]; port numbers must be unique`,
				`error: test.yaml: ServiceEntry default/ports: spec.ports[2].name: name "http" is also spec.ports[1]; port names must be unique`,
				`error: test.yaml: ServiceEntry default/ports: spec.ports[3].name: missing: every port needs a name (endpoints and workloads refer to ports by name)`,
			},
		},
		{
			name: "protocols",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: protocols}
spec:
  hosts: [protocols.example.com]
  resolution: DNS
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 8080, name: http-alt}
  - {number: 9000, name: admin}
  - {number: 9001, name: grpc, protocol: grpc}
`,
			want: []string{
				`warning: test.yaml: ServiceEntry default/protocols: spec.ports[0].protocol: protocol HTTPS is carried as opaque TCP by minimesh`,
				`warning: test.yaml: ServiceEntry default/protocols: spec.ports[2].protocol: not set, and the port name "admin" does not say: treated as TCP (set protocol: HTTP to route HTTP requests)`,
			},
			added: []string{"Service protocols.example.com (default/protocols)"},
		},
		{
			name: "unknown protocol",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: typo}
spec: {hosts: [typo.example.com], resolution: DNS, ports: [{number: 80, name: http, protocol: HTPP}, {number: 53, name: dns, protocol: UDP}]}
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/typo: spec.ports[0].protocol: unknown protocol "HTPP", want one of HTTP, HTTP2, GRPC, TCP, HTTPS, TLS, GRPC-WEB, MONGO, MYSQL, REDIS; did you mean "HTTP"?`,
				`error: test.yaml: ServiceEntry default/typo: spec.ports[1].protocol: UDP is not supported by minimesh (sidecars proxy TCP only)`,
			},
		},
		{
			name: "static needs IP addresses",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static}
spec:
  hosts: [static.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: backend.example.com}, {address: "not an address"}, {address: ""}]
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/static: spec.endpoints[0].address: "backend.example.com" is not an IP address; resolution STATIC needs IP addresses (set resolution: DNS to use host names)`,
				`error: test.yaml: ServiceEntry default/static: spec.endpoints[1].address: "not an address" is neither an IP address nor a DNS name`,
				`error: test.yaml: ServiceEntry default/static: spec.endpoints[2].address: missing: an address is required`,
			},
		},
		{
			name: "dns resolution",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [dns.example.com, rr.example.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: backend.example.com, ports: {htp: 8080}}]
`,
			want: []string{
				`warning: test.yaml: ServiceEntry default/dns: spec.resolution: DNS_ROUND_ROBIN is treated as DNS by minimesh`,
				`error: test.yaml: ServiceEntry default/dns: spec.endpoints[0].ports.htp: no service port named "htp" (ports: http); did you mean "http"?`,
			},
		},
		{
			name: "dynamic dns and both endpoints and selector",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dynamic}
spec:
  hosts: [dynamic.example.com]
  resolution: DYNAMIC_DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.9}]
  workloadSelector: {labels: {app: my-app}}
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/dynamic: spec.resolution: DYNAMIC_DNS is not supported by minimesh, want STATIC or DNS`,
				`error: test.yaml: ServiceEntry default/dynamic: spec.workloadSelector: set either endpoints or workloadSelector, not both`,
			},
		},
		{
			name: "wildcard host",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec: {hosts: ["*.example.com"], resolution: DNS, ports: [{number: 443, name: tls, protocol: TLS}]}
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/wild: spec.hosts[0]: wildcard host "*.example.com" is not supported by minimesh: it needs the name of each service`,
				`warning: test.yaml: ServiceEntry default/wild: spec.ports[0].protocol: protocol TLS is carried as opaque TCP by minimesh`,
			},
		},
		{
			name: "resolution none without endpoints",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none}
spec: {hosts: [none.example.com], ports: [{number: 80, name: http, protocol: HTTP}]}
`,
			want: []string{
				`warning: test.yaml: ServiceEntry default/none: spec.resolution: NONE (or not set) and no endpoints: minimesh does not forward to the original destination, so this service has no endpoints`,
			},
			added: []string{"Service none.example.com (default/none)"},
		},
		{
			name: "same host twice: the first by namespace/name wins",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a-other, namespace: other}
spec: {hosts: [my-app.default.svc.cluster.local, extra.example.com, kept.example.com], resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b-dup, namespace: default}
spec: {hosts: [extra.example.com, dup.example.com, dup.example.com], resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP}]}
`,
			want: []string{
				`warning: test.yaml#2: ServiceEntry default/b-dup: spec.hosts[2]: host "dup.example.com" is listed twice`,
				`error: test.yaml#1: ServiceEntry other/a-other: spec.hosts[0]: host "my-app.default.svc.cluster.local" is already declared by ServiceEntry default/my-app (canary.yaml#1); the first in namespace/name order wins`,
				`error: test.yaml#1: ServiceEntry other/a-other: spec.hosts[1]: host "extra.example.com" is already declared by ServiceEntry default/b-dup (test.yaml#2); the first in namespace/name order wins`,
			},
			added: []string{
				`Service dup.example.com (default/b-dup)`,
				`Service extra.example.com (default/b-dup)`,
				`Service kept.example.com (other/a-other)`,
			},
		},
		{
			name: "selected workload with a DNS address",
			yaml: `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec: {address: vm.example.com, labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy}
spec: {hosts: [legacy.example.com], resolution: STATIC, ports: [{number: 80, name: http, protocol: HTTP}], workloadSelector: {labels: {app: legacy}}}
`,
			want: []string{
				`warning: test.yaml#2: ServiceEntry default/legacy: spec.workloadSelector: selects WorkloadEntry default/vm, whose address "vm.example.com" is not an IP; resolution STATIC needs IP addresses: workload skipped`,
			},
			added: []string{"Service legacy.example.com (default/legacy)", "Workload default/vm"},
		},
	})
}

func TestBuildServiceEntryAddressErrors(t *testing.T) {
	runBuildCases(t, []buildCase{
		{
			name: "addresses that are neither IPs nor CIDR ranges",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vip}
spec:
  hosts: [vip.example.com]
  addresses: [10.96.0.10, db.example.com, "", 10.1.0.0/33]
  resolution: DNS
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
`,
			want: []string{
				`error: test.yaml: ServiceEntry default/vip: spec.addresses[1]: "db.example.com" is neither an IP address nor a CIDR range (such as 10.0.0.0/16)`,
				`error: test.yaml: ServiceEntry default/vip: spec.addresses[2]: "" is neither an IP address nor a CIDR range (such as 10.0.0.0/16)`,
				`error: test.yaml: ServiceEntry default/vip: spec.addresses[3]: "10.1.0.0/33" is neither an IP address nor a CIDR range (such as 10.0.0.0/16)`,
			},
		},
		{
			name: "host bits and duplicates",
			yaml: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vip}
spec:
  hosts: [vip.example.com]
  addresses: [10.1.2.3/16, 10.1.0.0/16, 10.96.0.10]
  resolution: DNS
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
`,
			want: []string{
				`warning: test.yaml: ServiceEntry default/vip: spec.addresses[0]: "10.1.2.3/16" has host bits set: it means the range 10.1.0.0/16`,
				`warning: test.yaml: ServiceEntry default/vip: spec.addresses[1]: address "10.1.0.0/16" is listed twice`,
			},
			added: []string{"Service vip.example.com (default/vip)"},
		},
	})
}

// TestBuildServiceEntryAddresses checks that spec.addresses reaches every
// host of the entry, in the order written, as canonical ranges.
func TestBuildServiceEntryAddresses(t *testing.T) {
	objs, diags, err := Decode("test.yaml", []byte(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example.com, db-replica.example.com]
  addresses: [240.0.0.5, "fd00::5", 10.8.0.0/16]
  resolution: DNS
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
`), "default")
	if err != nil || len(diags) != 0 {
		t.Fatalf("Decode: %v %v", err, diags)
	}
	snap, more := Build(objs, Options{})
	if len(more) != 0 {
		t.Fatalf("Build: %v", more)
	}
	want := []string{"240.0.0.5", "fd00::5", "10.8.0.0/16"}
	if len(snap.Services) != 2 {
		t.Fatalf("got %d services, want 2", len(snap.Services))
	}
	for _, s := range snap.Services {
		if diff := cmp.Diff(want, s.Addresses); diff != "" {
			t.Errorf("%s: addresses (-want +got):\n%s", s.Hostname, diff)
		}
	}
	// Each service owns its list: changing one must not change the other.
	snap.Services[0].Addresses[0] = "changed"
	if snap.Services[1].Addresses[0] != "240.0.0.5" {
		t.Errorf("the services of one entry share their Addresses slice")
	}
}
