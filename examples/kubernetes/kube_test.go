package kubernetes

// These tests run against a real kube-apiserver and etcd (internal/kubetest).
// Without the binaries they skip, saying how to get them:
//
//	bash hack/kube-testenv.sh

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/internal/kubetest"
)

// istioResources are the resource names of the Istio kinds, as Istio
// registers them.
var istioResources = map[string]string{
	"VirtualService":     "virtualservices",
	"DestinationRule":    "destinationrules",
	"ServiceEntry":       "serviceentries",
	"WorkloadEntry":      "workloadentries",
	"PeerAuthentication": "peerauthentications",
}

// servedVersions are the versions each Istio group must serve.
var servedVersions = map[string][]string{
	"networking.istio.io": {"v1alpha3", "v1beta1", "v1"},
	"security.istio.io":   {"v1beta1", "v1"},
}

// TestInstallOnARealAPIServer creates everything `kubectl apply -f
// examples/kubernetes/` and the walkthrough create, in the same order. The
// API server validates each object (strict field validation: an unknown
// field is an error); nothing runs, since a lone API server schedules no
// pods.
func TestInstallOnARealAPIServer(t *testing.T) {
	env := kubetest.Start(t)
	for _, file := range installFiles {
		if file == "crds.yaml" {
			env.InstallCRDs(t, file)
			continue
		}
		env.Apply(t, file)
	}
	for _, file := range demoFiles {
		env.Apply(t, file)
	}
	ctx := context.Background()
	dyn := dynamicClient(t, env)
	pa := dyn.Resource(istioGVR("security.istio.io", "v1", "PeerAuthentication")).Namespace("demo")
	// Step 2 of the walkthrough: STRICT replaces PERMISSIVE (kubectl apply
	// would update it; kubetest.Apply only creates).
	if err := pa.Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, strictFile)
	got, err := pa.Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := unstructured.NestedString(got.Object, "spec", "mtls", "mode"); mode != "STRICT" {
		t.Errorf("PeerAuthentication demo/default has mode %q after the strict step", mode)
	}

	c := env.Client(t)
	d, err := c.AppsV1().Deployments("minimesh-system").Get(ctx, "minimesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("minimesh has %d replicas, want 2", *d.Spec.Replicas)
	}
	for _, name := range []string{"my-app-v1", "my-app-v2", "client"} {
		if _, err := c.AppsV1().Deployments("demo").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("Deployment demo/%s: %v", name, err)
		}
	}
	if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "minimesh-sidecar-injector", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
}

// TestCRDsAcceptTheExamples creates every Istio object of examples/canary
// and examples/mtls in every version the CRDs serve, and reads each back
// unchanged: the schemas know every field the examples use (a field they
// did not know would be refused under strict validation, or else pruned).
func TestCRDsAcceptTheExamples(t *testing.T) {
	env := kubetest.Start(t)
	env.InstallCRDs(t, "crds.yaml")
	dyn := dynamicClient(t, env)
	ctx := context.Background()
	created := 0
	for _, dir := range []string{"canary", "mtls"} {
		files, err := filepath.Glob(filepath.Join("..", dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no examples in ../%s: %v", dir, err)
		}
		for _, file := range files {
			for i, doc := range readDocuments(t, file) {
				obj := &unstructured.Unstructured{}
				if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
					t.Fatalf("%s#%d: %v", file, i+1, err)
				}
				group := obj.GroupVersionKind().Group
				for _, version := range servedVersions[group] {
					ns := dir + "-" + version
					env.Namespace(t, ns)
					o := obj.DeepCopy()
					o.SetAPIVersion(group + "/" + version)
					o.SetNamespace(ns)
					r := dyn.Resource(istioGVR(group, version, o.GetKind())).Namespace(ns)
					back, err := r.Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"})
					if err != nil {
						t.Errorf("%s#%d as %s: %v", file, i+1, o.GetAPIVersion(), err)
						continue
					}
					created++
					if diff := cmp.Diff(asJSON(t, obj.Object["spec"]), asJSON(t, back.Object["spec"])); diff != "" {
						t.Errorf("%s#%d as %s: the API server changed the spec (-written +stored):\n%s", file, i+1, o.GetAPIVersion(), diff)
					}
				}
			}
		}
	}
	if created == 0 {
		t.Fatal("no Istio object created")
	}
	t.Logf("created %d objects", created)
}

// TestCRDsRejectOrPruneBadObjects: what a structural schema does with an
// object that does not fit it.
func TestCRDsRejectOrPruneBadObjects(t *testing.T) {
	env := kubetest.Start(t)
	env.InstallCRDs(t, "crds.yaml")
	env.Namespace(t, "bad")
	dyn := dynamicClient(t, env)
	ctx := context.Background()
	vs := dyn.Resource(istioGVR("networking.istio.io", "v1", "VirtualService")).Namespace("bad")

	t.Run("unknown field refused under strict validation", func(t *testing.T) {
		_, err := vs.Create(ctx, virtualService("typo", map[string]any{"rout": []any{}}), metav1.CreateOptions{FieldValidation: "Strict"})
		if err == nil || !strings.Contains(err.Error(), `unknown field "spec.http[0].rout"`) {
			t.Errorf("create with spec.http[0].rout: %v, want an unknown field error", err)
		}
	})
	t.Run("unknown field pruned otherwise", func(t *testing.T) {
		back, err := vs.Create(ctx, virtualService("pruned", map[string]any{"rout": []any{}}), metav1.CreateOptions{FieldValidation: "Ignore"})
		if err != nil {
			t.Fatal(err)
		}
		http, _, _ := unstructured.NestedSlice(back.Object, "spec", "http")
		if len(http) != 1 || len(http[0].(map[string]any)) != 1 {
			t.Errorf("stored spec.http = %v, want only route (rout pruned)", http)
		}
	})
	t.Run("wrong type refused", func(t *testing.T) {
		_, err := vs.Create(ctx, virtualService("wrongtype", map[string]any{"timeout": 5}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.http[0].timeout") || !strings.Contains(err.Error(), "string") {
			t.Errorf("create with a number for spec.http[0].timeout (a Duration): %v, want Invalid naming the field and its type", err)
		}
	})
	t.Run("enum value refused", func(t *testing.T) {
		pa := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
			"metadata": map[string]any{"name": "typo"},
			"spec":     map[string]any{"mtls": map[string]any{"mode": "STRICTEST"}},
		}}
		_, err := dyn.Resource(istioGVR("security.istio.io", "v1", "PeerAuthentication")).Namespace("bad").Create(ctx, pa, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.mtls.mode") || !strings.Contains(err.Error(), `"PERMISSIVE"`) {
			t.Errorf("create with mode STRICTEST: %v, want Invalid listing the supported values", err)
		}
	})
	t.Run("port out of range refused", func(t *testing.T) {
		se := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
			"metadata": map[string]any{"name": "negative"},
			"spec": map[string]any{"hosts": []any{"a.example"}, "ports": []any{
				map[string]any{"number": -1, "name": "http", "protocol": "HTTP"},
			}},
		}}
		_, err := dyn.Resource(istioGVR("networking.istio.io", "v1", "ServiceEntry")).Namespace("bad").Create(ctx, se, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.ports[0].number") {
			t.Errorf("create with port -1: %v, want Invalid naming spec.ports[0].number", err)
		}
	})
	t.Run("status kept as written", func(t *testing.T) {
		obj, err := vs.Create(ctx, virtualService("withstatus", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]any{"conditions": []any{map[string]any{
			"type": "Reconciled", "status": "False", "message": "spec.http[0].route: weights sum to 101, want 100",
		}}, "observedGeneration": "1"}
		obj.Object["status"] = status
		back, err := vs.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(asJSON(t, status), asJSON(t, back.Object["status"])); diff != "" {
			t.Errorf("status (-written +stored):\n%s", diff)
		}
	})
}

// virtualService is a VirtualService with one http rule routing to my-app,
// plus the given fields in that rule.
func virtualService(name string, extra map[string]any) *unstructured.Unstructured {
	rule := map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "my-app"}}}}
	for k, v := range extra {
		rule[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"hosts": []any{"my-app"}, "http": []any{rule}},
	}}
}

// TestRBACIsLeastPrivilege asks the API server, as minimesh's service
// account, what it may do: everything minimesh needs, and a sample of
// what it must not (other Secrets, writing specs, changing workloads).
func TestRBACIsLeastPrivilege(t *testing.T) {
	env := kubetest.Start(t)
	env.Apply(t, "00-namespace.yaml")
	env.InstallCRDs(t, "crds.yaml")
	env.Apply(t, "rbac.yaml")
	env.Namespace(t, "demo")
	token := env.ServiceAccountToken(t, "minimesh-system", "minimesh")
	sa, err := kubernetes.NewForConfig(env.ConfigForToken(token))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	type access struct {
		verb, group, resource, subresource, namespace, name string
	}
	allowed := []access{
		{"list", "", "services", "", "", ""},
		{"watch", "", "services", "", "", ""},
		{"list", "", "pods", "", "", ""},
		{"watch", "", "pods", "", "", ""},
		{"list", "", "namespaces", "", "", ""},
		{"watch", "discovery.k8s.io", "endpointslices", "", "", ""},
		{"list", "networking.istio.io", "virtualservices", "", "", ""},
		{"watch", "networking.istio.io", "destinationrules", "", "", ""},
		{"watch", "networking.istio.io", "serviceentries", "", "", ""},
		{"watch", "networking.istio.io", "workloadentries", "", "", ""},
		{"watch", "security.istio.io", "peerauthentications", "", "", ""},
		{"patch", "networking.istio.io", "virtualservices", "status", "demo", "my-app-vs"},
		{"update", "security.istio.io", "peerauthentications", "status", "demo", "default"},
		{"create", "", "events", "", "demo", ""},
		{"patch", "events.k8s.io", "events", "", "demo", ""},
		{"create", "authentication.k8s.io", "tokenreviews", "", "", ""},
		{"create", "", "configmaps", "", "demo", ""},
		{"get", "", "secrets", "", "minimesh-system", "minimesh-ca"},
		{"update", "", "secrets", "", "minimesh-system", "minimesh-ca"},
		{"create", "", "secrets", "", "minimesh-system", ""},
		{"update", "coordination.k8s.io", "leases", "", "minimesh-system", "minimesh"},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "minimesh-sidecar-injector"},
	}
	denied := []access{
		{"get", "", "secrets", "", "demo", "minimesh-ca"},
		{"list", "", "secrets", "", "minimesh-system", ""},
		{"get", "", "secrets", "", "minimesh-system", "someone-elses"},
		{"create", "", "secrets", "", "demo", ""},
		{"update", "networking.istio.io", "virtualservices", "", "demo", "my-app-vs"},
		{"delete", "security.istio.io", "peerauthentications", "", "demo", "default"},
		{"create", "", "pods", "", "demo", ""},
		{"delete", "", "pods", "", "demo", ""},
		{"update", "apps", "deployments", "", "demo", ""},
		{"create", "", "serviceaccounts", "token", "demo", "my-app"},
		{"create", "coordination.k8s.io", "leases", "", "demo", ""},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "someone-elses"},
		{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "minimesh-sidecar-injector"},
		{"list", "", "nodes", "", "", ""},
	}
	check := func(a access, want bool) {
		review, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
				Namespace: a.namespace, Name: a.name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if review.Status.Allowed != want {
			t.Errorf("%s %s: allowed=%v, want %v", a.verb, describe(a.group, a.resource, a.subresource, a.namespace, a.name), review.Status.Allowed, want)
		}
	}
	for _, a := range allowed {
		check(a, true)
	}
	for _, a := range denied {
		check(a, false)
	}

	// The same, with real requests for a few.
	if _, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list pods in all namespaces: %v", err)
	}
	if _, err := sa.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{}); err != nil {
		t.Errorf("create a TokenReview: %v", err)
	}
	if _, err := sa.CoreV1().Secrets("minimesh-system").Get(ctx, "minimesh-ca", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get secret minimesh-system/minimesh-ca (not created yet): %v, want NotFound", err)
	}
	if _, err := sa.CoreV1().Secrets("demo").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets in demo: %v, want Forbidden", err)
	}
}

func describe(group, resource, subresource, namespace, name string) string {
	s := resource
	if group != "" {
		s += "." + group
	}
	if subresource != "" {
		s += "/" + subresource
	}
	if namespace != "" {
		s = fmt.Sprintf("%s in %s", s, namespace)
	}
	if name != "" {
		s += " named " + name
	}
	return s
}

// asJSON is v as encoding/json reads it back, so that numbers compare equal
// whether YAML made them float64 or the API server int64.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func dynamicClient(t *testing.T, env *kubetest.Env) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

func istioGVR(group, version, kind string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: istioResources[kind]}
}
