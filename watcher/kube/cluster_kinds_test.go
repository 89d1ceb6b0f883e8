package kube

import (
	"slices"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minimesh/minimesh/mesh"
)

const reviewsHost = "reviews.shop.svc.cluster.local"

// Create, update and delete of every kind reach the published snapshot
// within the debounce; a pod becoming not ready in its EndpointSlice leaves
// the service's endpoints.
func TestClusterEveryKindReachesTheSnapshot(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "shop")
	_, p := c.watch(t, Config{})
	kube, nw, sec := c.kube, c.istio.NetworkingV1(), c.istio.SecurityV1()
	v1 := map[string]string{"app": "reviews", "version": "v1"}
	v2 := map[string]string{"app": "reviews", "version": "v2"}
	ips := map[string]string{"reviews-v1": "10.1.0.1", "reviews-v2": "10.1.0.2"}

	// Pods.
	step(t, p, "Pod created (with an IP)", func() error { return c.createPod("shop", "reviews-v1", ips["reviews-v1"], v1) },
		func(s *mesh.Snapshot) bool {
			w := workload(s, "reviews-v1.shop")
			return w != nil && w.Address == "10.1.0.1" && w.ServiceAccount == "reviews" && w.Labels["version"] == "v1"
		})
	step(t, p, "second Pod created", func() error { return c.createPod("shop", "reviews-v2", ips["reviews-v2"], v2) },
		func(s *mesh.Snapshot) bool { return workload(s, "reviews-v2.shop") != nil })
	step(t, p, "Pod labels updated", func() error {
		pod, err := kube.CoreV1().Pods("shop").Get(ctx, "reviews-v2", metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Labels["security.istio.io/tlsMode"] = "istio"
		_, err = kube.CoreV1().Pods("shop").Update(ctx, pod, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		w := workload(s, "reviews-v2.shop")
		return w != nil && w.Labels["security.istio.io/tlsMode"] == "istio"
	})

	// Service and EndpointSlice.
	step(t, p, "Service created", func() error {
		_, err := kube.CoreV1().Services("shop").Create(ctx, reviewsKubeService("shop"), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		svc := service(s, reviewsHost)
		return svc != nil && len(svc.Ports) == 1 && svc.Ports[0].Protocol == mesh.ProtocolHTTP && len(svc.Endpoints) == 0
	})
	step(t, p, "EndpointSlice created (both ready)", func() error {
		_, err := kube.DiscoveryV1().EndpointSlices("shop").Create(ctx,
			reviewsEndpointSlice("shop", map[string]bool{"reviews-v1": true, "reviews-v2": true}, ips), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		svc := service(s, reviewsHost)
		return slices.Equal(endpointAddresses(s, reviewsHost), []string{"10.1.0.1", "10.1.0.2"}) &&
			svc.Endpoints[0].Labels["version"] == "v1" && svc.Endpoints[0].ServiceAccount == "reviews"
	})
	setReady := func(ready bool) func() error {
		return func() error {
			s := reviewsEndpointSlice("shop", map[string]bool{"reviews-v1": true, "reviews-v2": ready}, ips)
			cur, err := kube.DiscoveryV1().EndpointSlices("shop").Get(ctx, s.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Endpoints = s.Endpoints
			_, err = kube.DiscoveryV1().EndpointSlices("shop").Update(ctx, cur, metav1.UpdateOptions{})
			return err
		}
	}
	step(t, p, "EndpointSlice: reviews-v2 not ready", setReady(false), func(s *mesh.Snapshot) bool {
		return slices.Equal(endpointAddresses(s, reviewsHost), []string{"10.1.0.1"})
	})
	step(t, p, "EndpointSlice: reviews-v2 ready again", setReady(true), func(s *mesh.Snapshot) bool {
		return slices.Equal(endpointAddresses(s, reviewsHost), []string{"10.1.0.1", "10.1.0.2"})
	})
	step(t, p, "Service updated (second port)", func() error {
		svc, err := kube.CoreV1().Services("shop").Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1ServicePort("grpc-admin", 9090))
		_, err = kube.CoreV1().Services("shop").Update(ctx, svc, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		svc := service(s, reviewsHost)
		return svc != nil && len(svc.Ports) == 2 && svc.Port(9090) != nil && svc.Port(9090).Protocol == mesh.ProtocolGRPC
	})

	// Istio kinds.
	step(t, p, "DestinationRule created", func() error {
		_, err := nw.DestinationRules("shop").Create(ctx, reviewsDR("shop"), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return len(s.DestinationRules) == 1 && len(s.DestinationRules[0].Subsets) == 2
	})
	step(t, p, "DestinationRule updated", func() error {
		dr, err := nw.DestinationRules("shop").Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			return err
		}
		dr.Spec.TrafficPolicy = &networking.TrafficPolicy{LoadBalancer: &networking.LoadBalancerSettings{
			LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_RANDOM}}}
		_, err = nw.DestinationRules("shop").Update(ctx, dr, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return len(s.DestinationRules) == 1 && s.DestinationRules[0].TrafficPolicy != nil &&
			s.DestinationRules[0].TrafficPolicy.LoadBalancer == mesh.LBRandom
	})
	step(t, p, "VirtualService created (90/10)", func() error {
		_, err := nw.VirtualServices("shop").Create(ctx, reviewsVS("shop", 90, 10), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return slices.Equal(weights(s, reviewsHost), []uint32{90, 10}) })
	step(t, p, "VirtualService updated (50/50)", func() error {
		vs, err := nw.VirtualServices("shop").Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			return err
		}
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = 50, 50
		_, err = nw.VirtualServices("shop").Update(ctx, vs, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return slices.Equal(weights(s, reviewsHost), []uint32{50, 50}) })
	step(t, p, "PeerAuthentication created (STRICT)", func() error {
		_, err := sec.PeerAuthentications("shop").Create(ctx, &securityv1.PeerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shop"},
			Spec: securityv1beta1.PeerAuthentication{Mtls: &securityv1beta1.PeerAuthentication_MutualTLS{
				Mode: securityv1beta1.PeerAuthentication_MutualTLS_STRICT}},
		}, metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return len(s.PeerAuthentications) == 1 && s.PeerAuthentications[0].Mode == mesh.MTLSStrict
	})
	step(t, p, "PeerAuthentication updated (PERMISSIVE)", func() error {
		pa, err := sec.PeerAuthentications("shop").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return err
		}
		pa.Spec.Mtls.Mode = securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
		_, err = sec.PeerAuthentications("shop").Update(ctx, pa, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return len(s.PeerAuthentications) == 1 && s.PeerAuthentications[0].Mode == mesh.MTLSPermissive
	})
	step(t, p, "WorkloadEntry created", func() error {
		_, err := nw.WorkloadEntries("shop").Create(ctx, &networkingv1.WorkloadEntry{
			ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Namespace: "shop"},
			Spec: networking.WorkloadEntry{Address: "10.2.0.1", Labels: map[string]string{"app": "legacy"},
				ServiceAccount: "legacy"},
		}, metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { w := workload(s, "vm-1.shop"); return w != nil && w.Address == "10.2.0.1" })
	step(t, p, "WorkloadEntry updated", func() error {
		we, err := nw.WorkloadEntries("shop").Get(ctx, "vm-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		we.Spec.Address = "10.2.0.9"
		_, err = nw.WorkloadEntries("shop").Update(ctx, we, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { w := workload(s, "vm-1.shop"); return w != nil && w.Address == "10.2.0.9" })
	const legacyHost = "legacy.example.com"
	step(t, p, "ServiceEntry created (selecting the WorkloadEntry)", func() error {
		_, err := nw.ServiceEntries("shop").Create(ctx, &networkingv1.ServiceEntry{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "shop"},
			Spec: networking.ServiceEntry{
				Hosts: []string{legacyHost}, Location: networking.ServiceEntry_MESH_INTERNAL,
				Resolution:       networking.ServiceEntry_STATIC,
				Ports:            []*networking.ServicePort{{Number: 80, Name: "http", Protocol: "HTTP"}},
				WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "legacy"}},
			},
		}, metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return slices.Equal(endpointAddresses(s, legacyHost), []string{"10.2.0.9"})
	})
	step(t, p, "ServiceEntry updated (second port)", func() error {
		se, err := nw.ServiceEntries("shop").Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil {
			return err
		}
		se.Spec.Ports = append(se.Spec.Ports, &networking.ServicePort{Number: 443, Name: "tcp-tls", Protocol: "TCP"})
		_, err = nw.ServiceEntries("shop").Update(ctx, se, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { svc := service(s, legacyHost); return svc != nil && len(svc.Ports) == 2 })

	step(t, p, "Sidecar created (imports shop only)", func() error {
		_, err := nw.Sidecars("shop").Create(ctx, &networkingv1.Sidecar{
			ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shop"},
			Spec:       networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"./*"}}}},
		}, metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool {
		return len(s.Sidecars) == 1 && len(s.Sidecars[0].Egress) == 1 && s.Sidecars[0].Egress[0].Namespace == "."
	})
	step(t, p, "Sidecar updated (imports istio-system too)", func() error {
		sc, err := nw.Sidecars("shop").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Egress[0].Hosts = append(sc.Spec.Egress[0].Hosts, "istio-system/*")
		_, err = nw.Sidecars("shop").Update(ctx, sc, metav1.UpdateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return len(s.Sidecars) == 1 && len(s.Sidecars[0].Egress) == 2 })

	// Deletes, each kind.
	del := metav1.DeleteOptions{}
	step(t, p, "Sidecar deleted", func() error { return nw.Sidecars("shop").Delete(ctx, "default", del) },
		func(s *mesh.Snapshot) bool { return len(s.Sidecars) == 0 })
	step(t, p, "ServiceEntry deleted", func() error { return nw.ServiceEntries("shop").Delete(ctx, "legacy", del) },
		func(s *mesh.Snapshot) bool { return service(s, legacyHost) == nil })
	step(t, p, "WorkloadEntry deleted", func() error { return nw.WorkloadEntries("shop").Delete(ctx, "vm-1", del) },
		func(s *mesh.Snapshot) bool { return workload(s, "vm-1.shop") == nil })
	step(t, p, "PeerAuthentication deleted", func() error { return sec.PeerAuthentications("shop").Delete(ctx, "default", del) },
		func(s *mesh.Snapshot) bool { return len(s.PeerAuthentications) == 0 })
	step(t, p, "VirtualService deleted", func() error { return nw.VirtualServices("shop").Delete(ctx, "reviews", del) },
		func(s *mesh.Snapshot) bool { return len(s.VirtualServices) == 0 })
	step(t, p, "DestinationRule deleted", func() error { return nw.DestinationRules("shop").Delete(ctx, "reviews", del) },
		func(s *mesh.Snapshot) bool { return len(s.DestinationRules) == 0 })
	step(t, p, "EndpointSlice deleted", func() error {
		return kube.DiscoveryV1().EndpointSlices("shop").Delete(ctx, "reviews-1", del)
	}, func(s *mesh.Snapshot) bool {
		svc := service(s, reviewsHost)
		return svc != nil && len(svc.Endpoints) == 0
	})
	step(t, p, "Service deleted", func() error { return kube.CoreV1().Services("shop").Delete(ctx, "reviews", del) },
		func(s *mesh.Snapshot) bool { return service(s, reviewsHost) == nil })
	step(t, p, "Pod deleted", func() error {
		return kube.CoreV1().Pods("shop").Delete(ctx, "reviews-v1", *metav1.NewDeleteOptions(0))
	}, func(s *mesh.Snapshot) bool { return workload(s, "reviews-v1.shop") == nil })
}
