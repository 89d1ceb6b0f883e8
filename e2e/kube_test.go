package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/kubetest"
	"github.com/minimesh/minimesh/internal/testbed"
	"github.com/minimesh/minimesh/internal/testlog"
	"github.com/minimesh/minimesh/kubeauth"
	"github.com/minimesh/minimesh/kubeca"
	"github.com/minimesh/minimesh/kubesource"
	"github.com/minimesh/minimesh/runner"
)

// TestKubernetesReplicas runs two minimesh replicas against a real API
// server with the canary app: both serve identical versions (secrets
// included), a proxy authenticates with its service-account token and is
// refused with another's, and a proxy whose replica dies reconnects to the
// other and sees no change.
func TestKubernetesReplicas(t *testing.T) {
	env := kubetest.Start(t)
	env.InstallCRDs(t, "../examples/kubernetes/crds.yaml")
	env.Namespace(t, "minimesh-system")
	env.Namespace(t, "demo")
	client := env.Client(t)
	createCanary(t, client)
	env.Apply(t, "../examples/kubernetes/demo/destination-rule.yaml")
	env.Apply(t, "../examples/kubernetes/demo/virtual-service.yaml")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replicas := make([]*runner.ControlPlane, 2)
	for i := range replicas {
		cp, err := runner.Start(ctx, runner.Config{
			XDSAddress: "127.0.0.1:0", Log: testlog.New(t).Named(fmt.Sprintf("replica-%d", i)),
			Cluster: kubesource.Config{
				RESTConfig: env.Config, Namespace: "minimesh-system", PodName: fmt.Sprintf("minimesh-%d", i),
			},
		})
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer cp.Stop()
		replicas[i] = cp
	}
	roots := x509.NewCertPool()
	secret, err := client.CoreV1().Secrets("minimesh-system").Get(ctx, kubesource.DefaultCASecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(secret.Data["root-cert.pem"])

	clientToken := env.ServiceAccountToken(t, "demo", "client", kubeauth.Audience)
	const node = "client-0.demo"
	dial := func(cp *runner.ControlPlane, token string) *grpc.ClientConn {
		conn, err := grpc.NewClient(cp.Addr.String(),
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "minimesh.minimesh-system.svc"})),
			grpc.WithPerRPCCredentials(bearer(token)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	sidecar := func() *envoysim.Envoy {
		return envoysim.New(envoysim.Config{NodeID: node, Delta: true, Metadata: map[string]string{"INTERCEPTION_MODE": "REDIRECT"}})
	}

	// A token of another service account is refused.
	other := env.ServiceAccountToken(t, "demo", "my-app", kubeauth.Audience)
	impostor := sidecar()
	runCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	err = impostor.Run(runCtx, dial(replicas[0], other))
	stop()
	if err == nil || !containsAll(err.Error(), "PermissionDenied", "service account") {
		t.Errorf("proxy %s with demo/my-app's token: err = %v, want PermissionDenied naming the service account", node, err)
	}

	// The right token: full config from replica 0.
	e := sidecar()
	runCtx0, stop0 := context.WithCancel(ctx)
	go e.Run(runCtx0, dial(replicas[0], clientToken))
	waitComplete(t, "replica 0", e)
	rc, ok := e.Resource(resourcev3.RouteType, "80").(*routev3.RouteConfiguration)
	if !ok {
		t.Fatalf("no route configuration \"80\" (transparent mode); routes: %v", e.Names(resourcev3.RouteType))
	}
	if got := splitOf(rc, "my-app.demo.svc.cluster.local"); got != "90/10" {
		t.Errorf("my-app split = %s, want 90/10", got)
	}
	v0 := replicas[0].Runner.Versions(node)

	// Replica 0 dies; the proxy reconnects to replica 1: same versions.
	stop0()
	replicas[0].Stop()
	e2 := sidecar()
	go e2.Run(ctx, dial(replicas[1], clientToken))
	waitComplete(t, "replica 1", e2)
	v1 := replicas[1].Runner.Versions(node)
	if len(v0) != 5 || !maps.Equal(v0, v1) {
		t.Errorf("versions differ between replicas (the proxy would see a change):\nreplica 0: %v\nreplica 1: %v", v0, v1)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.SecretType} {
		for _, name := range e.Names(typ) {
			if !protoEqual(e.Resource(typ, name), e2.Resource(typ, name)) {
				t.Errorf("%s %q differs between replicas", typ, name)
			}
		}
	}
	if p := append(e.Problems(), e2.Problems()...); len(p) > 0 {
		t.Errorf("config problems: %v", p)
	}

	// A pod turning not-ready in its EndpointSlice leaves EDS.
	v2Cluster := "outbound|80|v2|my-app.demo.svc.cluster.local"
	if got := claAddresses(e2, v2Cluster); !slices.Equal(got, []string{"10.1.0.2"}) {
		t.Fatalf("%s before: %v, want [10.1.0.2]", v2Cluster, got)
	}
	slice, err := client.DiscoveryV1().EndpointSlices("demo").Get(ctx, "my-app-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range slice.Endpoints {
		if slice.Endpoints[i].Addresses[0] == "10.1.0.2" {
			slice.Endpoints[i].Conditions.Ready = ptr.To(false)
		}
	}
	changed := time.Now()
	if _, err := client.DiscoveryV1().EndpointSlices("demo").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for len(claAddresses(e2, v2Cluster)) != 0 {
		if time.Since(changed) > 10*time.Second {
			t.Fatalf("the not-ready endpoint is still in %s: %v", v2Cluster, claAddresses(e2, v2Cluster))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("not-ready endpoint left EDS %v after the EndpointSlice update", time.Since(changed).Round(time.Millisecond))
	if got := claAddresses(e2, "outbound|80|v1|my-app.demo.svc.cluster.local"); !slices.Equal(got, []string{"10.1.0.1"}) {
		t.Errorf("v1 endpoints changed too: %v", got)
	}

	// The leader published the root where injected sidecars mount it.
	cm, err := client.CoreV1().ConfigMaps("demo").Get(ctx, kubeca.RootCertConfigMap, metav1.GetOptions{})
	if err != nil || cm.Data[kubeca.RootCertKey] == "" {
		t.Errorf("root-cert ConfigMap in demo: %v", err)
	}
}

// createCanary creates what a cluster would hold for the canary app: the
// Service, three running pods with IPs, and the EndpointSlice a
// controller-manager would write.
func createCanary(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	env := []struct{ pod, sa, version, ip string }{
		{"my-app-v1-0", "my-app", "v1", "10.1.0.1"},
		{"my-app-v2-0", "my-app", "v2", "10.1.0.2"},
		{"client-0", "client", "", "10.1.0.3"},
	}
	var endpoints []discoveryv1.Endpoint
	for _, p := range env {
		labels := map[string]string{"app": "client", "security.istio.io/tlsMode": "istio"}
		if p.version != "" {
			labels = map[string]string{"app": "my-app", "version": p.version, "security.istio.io/tlsMode": "istio"}
		}
		pod, err := c.CoreV1().Pods("demo").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.pod, Labels: labels},
			Spec: corev1.PodSpec{ServiceAccountName: p.sa,
				Containers: []corev1.Container{{Name: "app", Image: "example/app"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := c.CoreV1().Pods("demo").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if p.version != "" {
			endpoints = append(endpoints, discoveryv1.Endpoint{Addresses: []string{p.ip},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: p.pod}})
		}
	}
	_, err := c.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "my-app"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "my-app"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrFrom(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DiscoveryV1().EndpointSlices("demo").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "my-app-1", Labels: map[string]string{discoveryv1.LabelServiceName: "my-app"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// bearer sends a token with every RPC, as Envoy's STS credentials do.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (b bearer) RequireTransportSecurity() bool { return true }

// splitOf renders the weights of the first route of host's virtual host,
// "90/10".
func splitOf(rc *routev3.RouteConfiguration, host string) string {
	for _, vh := range rc.GetVirtualHosts() {
		if !slices.Contains(vh.GetDomains(), host) || len(vh.GetRoutes()) == 0 {
			continue
		}
		var parts []string
		for _, c := range vh.GetRoutes()[0].GetRoute().GetWeightedClusters().GetClusters() {
			parts = append(parts, strconv.Itoa(int(c.GetWeight().GetValue())))
		}
		return strings.Join(parts, "/")
	}
	return "no virtual host for " + host
}

// claAddresses returns the endpoint addresses a proxy holds for a cluster.
func claAddresses(e *envoysim.Envoy, cluster string) []string {
	cla, _ := e.Resource(resourcev3.EndpointType, cluster).(*endpointv3.ClusterLoadAssignment)
	var out []string
	for _, l := range cla.GetEndpoints() {
		for _, ep := range l.GetLbEndpoints() {
			out = append(out, ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
		}
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func protoEqual(a, b proto.Message) bool { return a != nil && b != nil && proto.Equal(a, b) }

func intstrFrom(port int) intstr.IntOrString { return intstr.FromInt32(int32(port)) }

// TestKubernetesInjectionWebhook registers minimesh's injector with a real
// API server (by URL: a lone API server cannot reach Services) and creates
// a pod in a labelled namespace: the API server calls the webhook, which
// the leader made trusted by filling in the caBundle, and the stored pod
// has the sidecar.
func TestKubernetesInjectionWebhook(t *testing.T) {
	env := kubetest.Start(t)
	env.InstallCRDs(t, "../examples/kubernetes/crds.yaml")
	env.Namespace(t, "minimesh-system")
	client := env.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "demo", Labels: map[string]string{"minimesh-injection": "enabled"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := testbed.FreePort(t)
	url := fmt.Sprintf("https://127.0.0.1:%d/inject", port)
	_, err = client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: kubesource.DefaultWebhookConfiguration},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "sidecar-injector.minimesh.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"minimesh-injection": "enabled"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := runner.Start(ctx, runner.Config{
		XDSAddress: "127.0.0.1:0", Log: testlog.New(t),
		Cluster: kubesource.Config{
			RESTConfig: env.Config, Namespace: "minimesh-system", PodName: "minimesh-0",
			WebhookAddress: fmt.Sprintf("127.0.0.1:%d", port),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		mwc, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, kubesource.DefaultWebhookConfiguration, metav1.GetOptions{})
		return err == nil && len(mwc.Webhooks[0].ClientConfig.CABundle) > 0, nil
	})
	if err != nil {
		t.Fatalf("the leader never filled in the webhook's caBundle: %v", err)
	}
	pod, err := client.CoreV1().Pods("demo").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "my-app-v1-0", Labels: map[string]string{"app": "my-app", "version": "v1"}},
		Spec: corev1.PodSpec{ServiceAccountName: "my-app",
			Containers: []corev1.Container{{Name: "app", Image: "example/app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod through the webhook: %v", err)
	}
	var names, inits, sidecars []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		inits = append(inits, c.Name)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = append(sidecars, c.Name) // a native sidecar: runs beside the app
		}
	}
	t.Logf("stored pod: containers %v, init containers %v (sidecars %v), labels %v", names, inits, sidecars, pod.Labels)
	if !slices.Contains(sidecars, "minimesh-proxy") || !slices.Contains(inits, "minimesh-init") {
		t.Errorf("pod not injected: containers %v, init containers %v, sidecars %v", names, inits, sidecars)
	}
	if pod.Labels["security.istio.io/tlsMode"] != "istio" {
		t.Errorf("injected pod lacks the tlsMode label: %v", pod.Labels)
	}
	// A namespace without the label is left alone.
	env.Namespace(t, "plain")
	plain, err := client.CoreV1().Pods("plain").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Spec.Containers) != 1 || len(plain.Spec.InitContainers) != 0 {
		t.Errorf("pod in an unlabelled namespace was injected: %+v", plain.Spec.Containers)
	}
}

// TestKubernetesServeWithShippedRBAC runs `serve --kubernetes` as the
// service account of examples/kubernetes, with exactly the rights its
// rbac.yaml grants: it must be able to do all of its work (watch, create
// the CA Secret and the Lease, publish the root ConfigMap, fill the
// webhook's caBundle, review tokens, write Events), and a proxy must get
// its configuration through it.
func TestKubernetesServeWithShippedRBAC(t *testing.T) {
	env := kubetest.Start(t)
	env.InstallCRDs(t, "../examples/kubernetes/crds.yaml")
	env.Apply(t, "../examples/kubernetes/00-namespace.yaml")
	env.Apply(t, "../examples/kubernetes/rbac.yaml")
	env.Apply(t, "../examples/kubernetes/webhook.yaml")
	env.Namespace(t, "demo")
	client := env.Client(t)
	createCanary(t, client)
	env.Apply(t, "../examples/kubernetes/demo/destination-rule.yaml")
	env.Apply(t, "../examples/kubernetes/demo/virtual-service.yaml")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	asMinimesh := env.ConfigForToken(env.ServiceAccountToken(t, "minimesh-system", "minimesh"))
	cp, err := runner.Start(ctx, runner.Config{
		XDSAddress: "127.0.0.1:0", Log: testlog.New(t),
		Cluster: kubesource.Config{RESTConfig: asMinimesh, Namespace: "minimesh-system", PodName: "minimesh-0"},
	})
	if err != nil {
		t.Fatalf("serve as the shipped service account: %v", err)
	}
	defer cp.Stop()

	// The leader's duties, done with the shipped rights.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		mwc, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, kubesource.DefaultWebhookConfiguration, metav1.GetOptions{})
		if err != nil || len(mwc.Webhooks[0].ClientConfig.CABundle) == 0 {
			return false, nil
		}
		_, err = client.CoreV1().ConfigMaps("demo").Get(ctx, kubeca.RootCertConfigMap, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the leader did not fill the webhook caBundle and publish the root ConfigMap with the shipped RBAC: %v", err)
	}

	// A proxy authenticates (TokenReview with the shipped rights) and gets
	// its configuration.
	roots := x509.NewCertPool()
	secret, err := client.CoreV1().Secrets("minimesh-system").Get(ctx, kubesource.DefaultCASecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(secret.Data["root-cert.pem"])
	conn, err := grpc.NewClient(cp.Addr.String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "minimesh.minimesh-system.svc"})),
		grpc.WithPerRPCCredentials(bearer(env.ServiceAccountToken(t, "demo", "client", kubeauth.Audience))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := envoysim.New(envoysim.Config{NodeID: "client-0.demo", Metadata: map[string]string{"INTERCEPTION_MODE": "REDIRECT"}})
	go e.Run(ctx, conn)
	waitComplete(t, "shipped RBAC", e)
	if rc, ok := e.Resource(resourcev3.RouteType, "80").(*routev3.RouteConfiguration); !ok || splitOf(rc, "my-app.demo.svc.cluster.local") != "90/10" {
		t.Errorf("route configuration 80: %v", rc)
	}

	// An invalid object gets its Event, written with the shipped rights.
	bad := []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: demo}
spec:
  hosts: [other]
  http:
  - route:
    - {destination: {host: my-app, subset: v9}}
`)
	path := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, path)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		events, err := client.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range events.Items {
			if ev.InvolvedObject.Name == "broken" && ev.Reason == "InvalidConfig" {
				t.Logf("event: %s", ev.Message)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no InvalidConfig Event for VirtualService demo/broken written with the shipped RBAC: %v", err)
	}
}
