package mesh

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1alpha3"
)

// decodeFile decodes a test file, failing the test on any diagnostic that is
// not expected to be there.
func decodeFile(t *testing.T, path, source string) []Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, diags, err := Decode(source, data, "default")
	if err != nil {
		t.Fatalf("Decode(%s): %v", path, err)
	}
	for _, d := range diags {
		t.Errorf("Decode(%s): unexpected diagnostic: %v", path, d)
	}
	return objs
}

// TestBuildCanary builds the blog's canary and compares the whole snapshot
// with a literal written by hand from the YAML, not with the converters.
func TestBuildCanary(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	got, diags := Build(objs, Options{})
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %v", d)
	}

	v1 := &Workload{
		Name:           "my-app-v1",
		Namespace:      "default",
		Address:        "10.0.0.1",
		Labels:         map[string]string{"app": "my-app", "version": "v1"},
		ServiceAccount: "my-app",
		Ports:          map[string]uint32{"http": 8080},
		Source:         Ref{Kind: "WorkloadEntry", Namespace: "default", Name: "my-app-v1", Source: "canary.yaml#2"},
	}
	v2 := &Workload{
		Name:           "my-app-v2",
		Namespace:      "default",
		Address:        "10.0.0.2",
		Labels:         map[string]string{"app": "my-app", "version": "v2"},
		ServiceAccount: "my-app",
		Ports:          map[string]uint32{"http": 8080},
		Source:         Ref{Kind: "WorkloadEntry", Namespace: "default", Name: "my-app-v2", Source: "canary.yaml#3"},
	}
	want := &Snapshot{
		DomainSuffix:  "cluster.local",
		RootNamespace: "istio-system",
		Services: []*Service{{
			Hostname:   "my-app.default.svc.cluster.local",
			Namespace:  "default",
			Ports:      []Port{{Number: 80, Name: "http", Protocol: ProtocolHTTP}},
			Resolution: ResolutionStatic,
			External:   false,
			Endpoints: []*Endpoint{
				{
					Address:        "10.0.0.1",
					Ports:          map[string]uint32{"http": 8080},
					Labels:         map[string]string{"app": "my-app", "version": "v1"},
					Workload:       v1,
					ServiceAccount: "my-app",
				},
				{
					Address:        "10.0.0.2",
					Ports:          map[string]uint32{"http": 8080},
					Labels:         map[string]string{"app": "my-app", "version": "v2"},
					Workload:       v2,
					ServiceAccount: "my-app",
				},
			},
			Source: Ref{Kind: "ServiceEntry", Namespace: "default", Name: "my-app", Source: "canary.yaml#1"},
		}},
		Workloads: []*Workload{v1, v2},
		VirtualServices: []*VirtualService{{
			Name:      "my-app-vs",
			Namespace: "default",
			Hosts:     []string{"my-app.default.svc.cluster.local"},
			HTTP: []HTTPRoute{{
				Route: []RouteDestination{
					{Host: "my-app.default.svc.cluster.local", Subset: "v1", Weight: 90},
					{Host: "my-app.default.svc.cluster.local", Subset: "v2", Weight: 10},
				},
			}},
			Source: Ref{Kind: "VirtualService", Namespace: "default", Name: "my-app-vs", Source: "canary.yaml#5"},
		}},
		DestinationRules: []*DestinationRule{{
			Name:      "my-app-dr",
			Namespace: "default",
			Host:      "my-app.default.svc.cluster.local",
			Subsets: []Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
			Source: Ref{Kind: "DestinationRule", Namespace: "default", Name: "my-app-dr", Source: "canary.yaml#4"},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build(canary) mismatch (-want +got):\n%s", diff)
	}
	if got.Services[0].Endpoints[0].Workload != got.Workloads[0] {
		t.Errorf("endpoint of my-app-v1 does not point at the snapshot's workload")
	}
}

// TestBuildPolicies checks a DestinationRule with every supported policy
// field, merged into a subset, and a VirtualService with every supported
// rule field, against literals.
func TestBuildPolicies(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	objs = append(objs, decodeFile(t, "testdata/policies.yaml", "policies.yaml")...)
	snap, diags := Build(objs, Options{})
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %v", d)
	}
	rulePolicy := &TrafficPolicy{
		LoadBalancer: LBLeastRequest,
		ConnectionPool: &ConnectionPool{
			MaxConnections:           100,
			ConnectTimeout:           30 * time.Millisecond,
			HTTP1MaxPendingRequests:  10,
			HTTP2MaxRequests:         1000,
			MaxRequestsPerConnection: 5,
			MaxRetries:               3,
			IdleTimeout:              90 * time.Second,
		},
		OutlierDetection: &OutlierDetection{
			Consecutive5xxErrors:     7,
			ConsecutiveGatewayErrors: 2,
			Interval:                 5 * time.Minute,
			BaseEjectionTime:         15 * time.Minute,
			MaxEjectionPercent:       50,
		},
	}
	wantDR := &DestinationRule{
		Name:          "api",
		Namespace:     "shop",
		Host:          "api.shop.svc.cluster.local",
		TrafficPolicy: rulePolicy,
		Subsets: []Subset{
			{Name: "stable", Labels: map[string]string{"track": "stable"}, TrafficPolicy: rulePolicy},
			{
				Name:   "canary",
				Labels: map[string]string{"track": "canary"},
				TrafficPolicy: &TrafficPolicy{
					LoadBalancer:     LBRandom,
					ConnectionPool:   &ConnectionPool{MaxConnections: 1},
					OutlierDetection: rulePolicy.OutlierDetection,
				},
			},
		},
		Source: Ref{Kind: "DestinationRule", Namespace: "shop", Name: "api", Source: "policies.yaml#2"},
	}
	wantVS := &VirtualService{
		Name:      "api",
		Namespace: "shop",
		Hosts:     []string{"api.shop.svc.cluster.local", "api.example.com"},
		HTTP: []HTTPRoute{
			{
				Name: "canary-testers",
				Match: []HTTPMatch{
					{
						Name:   "by-header",
						URI:    &StringMatch{Kind: MatchPrefix, Value: "/v2/"},
						Method: &StringMatch{Kind: MatchExact, Value: "GET"},
						Headers: []HeaderMatch{
							{Name: "x-canary", Value: StringMatch{Kind: MatchExact, Value: "yes"}},
							{Name: "x-user", Value: StringMatch{Kind: MatchRegex, Value: "tester-[0-9]+"}},
						},
					},
					{URI: &StringMatch{Kind: MatchExact, Value: "/canary"}},
				},
				Route:   []RouteDestination{{Host: "api.shop.svc.cluster.local", Subset: "canary", Port: 8080, Weight: 100}},
				Timeout: 1500 * time.Millisecond,
				Retries: &Retries{Attempts: 3, PerTryTimeout: 500 * time.Millisecond, RetryOn: "5xx,reset"},
			},
			{
				Route: []RouteDestination{
					{Host: "api.shop.svc.cluster.local", Subset: "stable", Weight: 75},
					{Host: "my-app.default.svc.cluster.local", Weight: 25},
				},
				Retries: &Retries{},
			},
		},
		Source: Ref{Kind: "VirtualService", Namespace: "shop", Name: "api", Source: "policies.yaml#3"},
	}
	wantSvc := &Service{
		Hostname:  "api.example.com",
		Namespace: "shop",
		Ports: []Port{
			{Number: 80, Name: "http", Protocol: ProtocolHTTP, TargetPort: 9090},
			{Number: 8080, Name: "admin", Protocol: ProtocolHTTP},
		},
		Resolution: ResolutionStatic,
		Endpoints: []*Endpoint{
			{Address: "10.1.0.1", Labels: map[string]string{"track": "stable"}},
			{
				Address:        "10.1.0.2",
				Ports:          map[string]uint32{"admin": 18080},
				Labels:         map[string]string{"track": "canary"},
				Weight:         2,
				ServiceAccount: "api",
			},
		},
		Source: Ref{Kind: "ServiceEntry", Namespace: "shop", Name: "api", Source: "policies.yaml#1"},
	}
	if len(snap.Services) != 3 {
		t.Fatalf("got %d services, want 3 (my-app, and api under two names)", len(snap.Services))
	}
	if diff := cmp.Diff(wantSvc, snap.Services[0]); diff != "" {
		t.Errorf("Service api.example.com mismatch (-want +got):\n%s", diff)
	}
	wantSvc.Hostname = "api.shop.svc.cluster.local"
	if diff := cmp.Diff(wantSvc, snap.Services[1]); diff != "" {
		t.Errorf("Service api.shop.svc.cluster.local mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDR, findDR(snap, "shop", "api")); diff != "" {
		t.Errorf("DestinationRule shop/api mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantVS, findVS(snap, "shop", "api")); diff != "" {
		t.Errorf("VirtualService shop/api mismatch (-want +got):\n%s", diff)
	}
}

// findDR returns the DestinationRule namespace/name of snap, or nil.
func findDR(snap *Snapshot, namespace, name string) *DestinationRule {
	for _, dr := range snap.DestinationRules {
		if dr.Namespace == namespace && dr.Name == name {
			return dr
		}
	}
	return nil
}

// findVS returns the VirtualService namespace/name of snap, or nil.
func findVS(snap *Snapshot, namespace, name string) *VirtualService {
	for _, vs := range snap.VirtualServices {
		if vs.Namespace == namespace && vs.Name == name {
			return vs
		}
	}
	return nil
}

// TestBuildDeterministic shuffles the input many times: the snapshot and
// the diagnostics must not change.
func TestBuildDeterministic(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	objs = append(objs, decodeFile(t, "testdata/policies.yaml", "policies.yaml")...)
	more, _, err := Decode("conflicts.yaml", []byte(conflictsYAML), "default")
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, more...)
	want, wantDiags := Build(objs, Options{})
	if len(wantDiags) == 0 {
		t.Fatal("the conflicts should produce diagnostics; the test would prove little without them")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		shuffled := append([]Object(nil), objs...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got, gotDiags := Build(shuffled, Options{})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("shuffle %d: snapshot differs (-first +shuffled):\n%s", i, diff)
		}
		if diff := cmp.Diff(wantDiags, gotDiags); diff != "" {
			t.Fatalf("shuffle %d: diagnostics differ (-first +shuffled):\n%s", i, diff)
		}
	}
}

// conflictsYAML declares hosts twice, so that the winner depends on sorting.
const conflictsYAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b-second, namespace: default}
spec:
  hosts: [db.example.com, cache.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a-first, namespace: default}
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{number: 5433, name: tcp-db, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: z-late, namespace: default}
spec:
  hosts: [my-app]
  http: [{route: [{destination: {host: my-app, subset: v2}}]}]
`

// TestBuildDoesNotShareInput changes the input after Build: the snapshot
// must not see it.
func TestBuildDoesNotShareInput(t *testing.T) {
	objs := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
	snap, _ := Build(objs, Options{})
	for _, obj := range objs {
		switch spec := obj.Spec.(type) {
		case *networking.WorkloadEntry:
			spec.Labels["version"] = "changed"
			spec.Ports["http"] = 1
		case *networking.DestinationRule:
			spec.Subsets[0].Labels["version"] = "changed"
		}
	}
	if got := snap.Workloads[0].Labels["version"]; got != "v1" {
		t.Errorf("workload label changed with the input: %q", got)
	}
	if got := snap.Workloads[0].Ports["http"]; got != 8080 {
		t.Errorf("workload port changed with the input: %d", got)
	}
	if got := snap.Services[0].Endpoints[0].Labels["version"]; got != "v1" {
		t.Errorf("endpoint label changed with the input: %q", got)
	}
	if got := snap.DestinationRules[0].Subsets[0].Labels["version"]; got != "v1" {
		t.Errorf("subset label changed with the input: %q", got)
	}
}
