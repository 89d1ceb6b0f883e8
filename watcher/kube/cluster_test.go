package kube

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/minimesh/minimesh/internal/kubetest"
	"github.com/minimesh/minimesh/mesh"
)

// crdsPath holds the CRDs minimesh ships for the Istio kinds it reads.
const crdsPath = "../../examples/kubernetes/crds.yaml"

// rbacPath holds the RBAC minimesh ships.
const rbacPath = "../../examples/kubernetes/rbac.yaml"

// A change reaches the published snapshot within this time: the debounce
// ceiling (100 ms) plus the watch and a loaded machine's scheduling.
const maxLatency = 2 * time.Second

// cluster is a real API server with minimesh's CRDs, and clients of it.
type cluster struct {
	env   *kubetest.Env
	kube  kubernetes.Interface
	istio istioclient.Interface
}

// startCluster starts etcd and kube-apiserver for the test (skipped
// loudly without them) and installs the CRDs.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := kubetest.Start(t)
	if _, err := os.Stat(crdsPath); err != nil {
		t.Fatalf("the CRDs minimesh ships are missing: %v", err)
	}
	env.InstallCRDs(t, crdsPath)
	ic, err := istioclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{env: env, kube: env.Client(t), istio: ic}
}

// watch starts a watcher of the cluster and waits for its first snapshot.
func (c *cluster) watch(t *testing.T, cfg Config) (*Watcher, *published) {
	t.Helper()
	if cfg.RESTConfig == nil {
		cfg.RESTConfig = c.env.Config
	}
	if cfg.Log == nil {
		cfg.Log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := runWatcher(t, w)
	p.waitFor(t, "anything (the first snapshot, after sync)", 30*time.Second, func(*mesh.Snapshot) bool { return true })
	return w, p
}

// step makes a change and waits until a snapshot shows it, logging how
// long that took; it fails beyond maxLatency.
func step(t *testing.T, p *published, what string, change func() error, ok func(*mesh.Snapshot) bool) *mesh.Snapshot {
	t.Helper()
	if err := change(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	done := time.Now()
	snap, at := p.waitFor(t, what, 10*time.Second, ok)
	latency := at.Sub(done)
	t.Logf("%-55s reached the snapshot in %v", what, latency.Round(time.Millisecond))
	if latency > maxLatency {
		t.Errorf("%s took %v to reach the snapshot, want under %v", what, latency, maxLatency)
	}
	return snap
}

var ctx = context.Background()

// service returns the service with that host, or nil.
func service(s *mesh.Snapshot, host string) *mesh.Service {
	for _, svc := range s.Services {
		if svc.Hostname == host {
			return svc
		}
	}
	return nil
}

// workload returns the workload with that node ID, or nil.
func workload(s *mesh.Snapshot, id string) *mesh.Workload {
	for _, w := range s.Workloads {
		if w.ID() == id {
			return w
		}
	}
	return nil
}

// endpointAddresses lists the endpoint addresses of a service ("" when
// the service is missing).
func endpointAddresses(s *mesh.Snapshot, host string) []string {
	svc := service(s, host)
	if svc == nil {
		return nil
	}
	var out []string
	for _, e := range svc.Endpoints {
		out = append(out, e.Address)
	}
	return out
}

// createPod creates a pod and gives it an IP and the Running phase, as a
// kubelet would.
func (c *cluster) createPod(ns, name, ip string, labels map[string]string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "reviews",
			Containers:         []corev1.Container{{Name: "app", Image: "example.com/reviews:1"}},
		},
	}
	created, err := c.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	_, err = c.kube.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

// reviewsEndpointSlice is the slice of Service reviews with one endpoint
// per pod (name -> IP), each ready or not.
func reviewsEndpointSlice(ns string, ready map[string]bool, ips map[string]string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](9080)}},
	}
	for _, pod := range sortedKeys(ips) {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ips[pod]},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready[pod])},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod},
		})
	}
	return s
}

// reviewsVS routes reviews to subsets v1 and v2 with these weights.
func reviewsVS(ns string, v1, v2 int32) *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns},
		Spec: networking.VirtualService{
			Hosts: []string{"reviews"},
			Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
				{Destination: &networking.Destination{Host: "reviews", Subset: "v1"}, Weight: v1},
				{Destination: &networking.Destination{Host: "reviews", Subset: "v2"}, Weight: v2},
			}}},
		},
	}
}

// reviewsDR declares the subsets v1 and v2 of reviews.
func reviewsDR(ns string) *networkingv1.DestinationRule {
	return &networkingv1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns},
		Spec: networking.DestinationRule{
			Host: "reviews",
			Subsets: []*networking.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		},
	}
}

// reviewsService is the Kubernetes Service reviews, port 9080 named http.
func reviewsKubeService(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "reviews"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9080}},
		},
	}
}

// weights returns the weights of the first rule of the VirtualService
// routing host, or nil.
func weights(s *mesh.Snapshot, host string) []uint32 {
	for _, vs := range s.VirtualServices {
		for _, h := range vs.Hosts {
			if h == host && len(vs.HTTP) > 0 {
				var out []uint32
				for _, d := range vs.HTTP[0].Route {
					out = append(out, d.Weight)
				}
				return out
			}
		}
	}
	return nil
}

// corev1ServicePort is a TCP Service port.
func corev1ServicePort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port}
}
