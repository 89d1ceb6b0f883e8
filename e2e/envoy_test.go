package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/testbed"
)

// TestEnvoySidecars connects simulated Envoys (state of the world and
// delta, a workload's sidecar and a client outside the mesh) to a real
// minimesh: each must get a complete, valid config, and a weight edit must
// reach it as a route configuration update only.
func TestEnvoySidecars(t *testing.T) {
	c := testbed.StartCanaryServer(t)
	conn, err := grpc.NewClient(c.XDSAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	type sim struct {
		name  string
		envoy *envoysim.Envoy
	}
	// Each simulated Envoy has its own node ID; the workload has one
	// sidecar (SotW), and the delta Envoy is a client outside the mesh.
	var sims []sim
	for _, c := range []struct {
		id    string
		delta bool
	}{{"client.default", false}, {"my-app-v1.default", false}, {"delta-client.default", true}} {
		e := envoysim.New(envoysim.Config{NodeID: c.id, Delta: c.delta})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() {
			if err := e.Run(ctx, conn); err != nil && ctx.Err() == nil {
				t.Errorf("%s: stream ended: %v", c.id, err)
			}
		}()
		mode := "sotw"
		if c.delta {
			mode = "delta"
		}
		sims = append(sims, sim{name: mode + " " + c.id, envoy: e})
	}

	for _, s := range sims {
		waitComplete(t, s.name, s.envoy)
		rc := s.envoy.Resource(resourcev3.RouteType, "15001").(*routev3.RouteConfiguration)
		if got := weights(rc); got != "90/10" {
			t.Fatalf("%s: route 15001 splits %s, want 90/10", s.name, got)
		}
		if s.envoy.Resource(resourcev3.ListenerType, "127.0.0.1_15001") == nil {
			t.Fatalf("%s: no outbound listener 127.0.0.1_15001 (has %v)", s.name, s.envoy.Names(resourcev3.ListenerType))
		}
	}
	sidecar := sims[1].envoy
	inbound := fmt.Sprintf("127.0.0.1_%d", c.Ports["v1"])
	if sidecar.Resource(resourcev3.ListenerType, inbound) == nil {
		t.Fatalf("sidecar of my-app-v1: no inbound listener %s (has %v)", inbound, sidecar.Names(resourcev3.ListenerType))
	}

	for _, s := range sims {
		drain(s.envoy)
	}
	c.SetWeights(t, 50, 50)
	for _, s := range sims {
		deadline := time.After(2 * time.Second)
		for {
			select {
			case u := <-s.envoy.Updates():
				if u.NACK != "" {
					t.Fatalf("%s: NACK %s: %s", s.name, u.TypeURL, u.NACK)
				}
				if u.TypeURL != resourcev3.RouteType {
					t.Fatalf("%s: a weight edit pushed %s %v; only the route configuration should change", s.name, u.TypeURL, u.Names)
				}
				rc := s.envoy.Resource(resourcev3.RouteType, "15001").(*routev3.RouteConfiguration)
				if weights(rc) != "50/50" {
					t.Fatalf("%s: after the edit route 15001 splits %s", s.name, weights(rc))
				}
			case <-deadline:
				t.Fatalf("%s: no route update within 2s of the edit", s.name)
			}
			break
		}
		if p := s.envoy.Problems(); len(p) > 0 {
			t.Fatalf("%s: Envoy would reject: %v", s.name, p)
		}
	}
}

func waitComplete(t *testing.T, name string, e *envoysim.Envoy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, missing := e.Complete()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: config incomplete after 5s: %v", name, missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func drain(e *envoysim.Envoy) {
	for {
		select {
		case <-e.Updates():
		default:
			return
		}
	}
}

// weights renders the weighted clusters of the first route as "90/10".
func weights(rc *routev3.RouteConfiguration) string {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			wc := r.GetRoute().GetWeightedClusters().GetClusters()
			if len(wc) == 2 {
				return fmt.Sprintf("%d/%d", wc[0].GetWeight().GetValue(), wc[1].GetWeight().GetValue())
			}
		}
	}
	return "none"
}
