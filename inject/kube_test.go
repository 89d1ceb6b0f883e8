package inject_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/inject"
	"github.com/minimesh/minimesh/internal/kubetest"
)

// TestInjectedManifestsAreAccepted creates the golden outputs in a real API
// server with strict field validation: the pod templates `minimesh inject`
// writes pass Kubernetes' own validation (native sidecars, probes, port
// names, projected tokens).
func TestInjectedManifestsAreAccepted(t *testing.T) {
	env := kubetest.Start(t)
	env.Namespace(t, "shop")
	for _, f := range []string{"deployment.yaml", "pod.yaml", "jobs.yaml", "skipped.yaml"} {
		env.Apply(t, filepath.Join("testdata", "out", f))
	}
}

// TestWebhookThroughAPIServer registers the webhook with a real API server,
// as examples/kubernetes does (namespace selector minimesh-injection:
// enabled), and checks that a pod created in a labeled namespace is stored
// exactly as the pod `minimesh inject` writes, created in an unlabeled one;
// and that an opted-out pod and a pod in an unlabeled namespace are stored
// without a sidecar.
func TestWebhookThroughAPIServer(t *testing.T) {
	env := kubetest.Start(t)
	client := env.Client(t)
	ctx := context.Background()

	srv := httptest.NewTLSServer(inject.NewWebhook(inject.Config{}))
	t.Cleanup(srv.Close)
	registerWebhook(t, client, srv)
	for name, labels := range map[string]map[string]string{
		"injected": {"minimesh-injection": "enabled"},
		"plain":    nil,
	} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	in, err := os.ReadFile(filepath.Join("testdata", "in", "pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	waitForWebhook(t, client, decodePod(t, in))
	got, err := client.CoreV1().Pods("injected").Create(ctx, decodePod(t, in), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	injected, err := inject.InjectYAML(inject.Config{}, in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := client.CoreV1().Pods("plain").Create(ctx, decodePod(t, injected), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
		t.Errorf("pod spec from the webhook differs from minimesh inject's (-inject +webhook):\n%s", diff)
	}
	if diff := cmp.Diff(want.Labels, got.Labels); diff != "" {
		t.Errorf("labels (-inject +webhook):\n%s", diff)
	}
	if diff := cmp.Diff(want.Annotations, got.Annotations); diff != "" {
		t.Errorf("annotations (-inject +webhook):\n%s", diff)
	}
	if len(got.Spec.InitContainers) != 2 {
		t.Errorf("webhook pod has %d init containers, want minimesh-init and minimesh-proxy", len(got.Spec.InitContainers))
	}

	for ns, pod := range map[string]*corev1.Pod{
		"injected": withAnnotation(decodePod(t, in), "opted-out", inject.InjectAnnotation, "false"),
		"plain":    withAnnotation(decodePod(t, in), "unlabeled", "team", "a"),
	} {
		stored, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Spec.InitContainers) != 0 || stored.Labels[inject.TLSModeLabel] != "" {
			t.Errorf("pod %s/%s was injected: %v", ns, stored.Name, stored.Spec.InitContainers)
		}
	}
}

// registerWebhook creates the MutatingWebhookConfiguration that sends pod
// creations in labeled namespaces to srv.
func registerWebhook(t *testing.T, client kubernetes.Interface, srv *httptest.Server) {
	t.Helper()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "minimesh-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "sidecar.minimesh.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      ptr.To(srv.URL + "/inject"),
				CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"minimesh-injection": "enabled"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitForWebhook dry-runs pod creations until the API server, which loads
// webhook configurations asynchronously, calls the webhook.
func waitForWebhook(t *testing.T, client kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := client.CoreV1().Pods("injected").Create(context.Background(), pod.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Annotations[inject.StatusAnnotation] != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server did not call the webhook within 30s (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// decodePod decodes a Pod from YAML.
func decodePod(t *testing.T, y []byte) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(y, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// withAnnotation renames the pod and annotates it.
func withAnnotation(pod *corev1.Pod, name, key, value string) *corev1.Pod {
	pod.Name = name
	pod.Annotations = map[string]string{key: value}
	return pod
}
