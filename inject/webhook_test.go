package inject

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// podCreate is an AdmissionReview for creating the pod, JSON as the API
// server sends it.
func podCreate(t *testing.T, podJSON []byte) []byte {
	t.Helper()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("705ab4f5-6393-11e8-b7cc-42010a800002"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "shop",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: podJSON},
		},
	}
	j, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// admit posts a review to the webhook and decodes the response.
func admit(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	NewWebhook(Config{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatal(err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" || review.Response == nil {
		t.Fatalf("not an AdmissionReview response: %s", rec.Body)
	}
	if review.Response.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" {
		t.Errorf("response UID %q does not echo the request's", review.Response.UID)
	}
	return review.Response
}

// mutate runs the pod through the webhook and applies the patch it returns,
// as the API server would.
func mutate(t *testing.T, podJSON []byte) []byte {
	t.Helper()
	resp := admit(t, podCreate(t, podJSON))
	if !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("the patch is not JSON Patch: %v", err)
	}
	out, err := patch.Apply(podJSON)
	if err != nil {
		t.Fatalf("the patch does not apply: %v", err)
	}
	return out
}

// podYAML turns the pod template of the Deployment in
// testdata/in/deployment.yaml into a Pod, as its ReplicaSet would create
// it, or returns testdata/in/pod.yaml.
func podYAML(t *testing.T, which string) []byte {
	t.Helper()
	if which == "pod.yaml" {
		y, err := os.ReadFile(filepath.Join("testdata", "in", "pod.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	y, err := os.ReadFile(filepath.Join("testdata", "in", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(strings.Split(string(y), "\n---\n")[1]), &d); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template
	pod["apiVersion"], pod["kind"] = "v1", "Pod"
	pod["metadata"].(map[string]any)["generateName"] = "reviews-v1-5d8f9-"
	out, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWebhookMatchesInject: the webhook's patch, applied to a pod, gives
// the pod that `minimesh inject` writes for the same input.
func TestWebhookMatchesInject(t *testing.T) {
	for _, which := range []string{"pod.yaml", "deployment template"} {
		t.Run(which, func(t *testing.T) {
			in := podYAML(t, which)
			podJSON, err := yaml.YAMLToJSON(in)
			if err != nil {
				t.Fatal(err)
			}
			fromWebhook := mutate(t, podJSON)

			injected, err := InjectYAML(Config{}, in)
			if err != nil {
				t.Fatal(err)
			}
			fromInject, err := yaml.YAMLToJSON(injected)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(fromWebhook, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(fromInject, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("webhook result differs from minimesh inject's (-inject +webhook):\n%s", diff)
			}
			if !strings.Contains(string(fromWebhook), `"minimesh-proxy"`) {
				t.Errorf("no sidecar in the webhook's result")
			}

			// The pod the API server stores comes back on a retry or a
			// second webhook: it is left alone.
			if resp := admit(t, podCreate(t, fromWebhook)); !resp.Allowed || resp.Patch != nil {
				t.Errorf("an injected pod got allowed=%v patch=%s, want allowed without patch", resp.Allowed, resp.Patch)
			}
		})
	}
}

// TestWebhookAllowsWithoutPatch covers pods the webhook must not touch.
func TestWebhookAllowsWithoutPatch(t *testing.T) {
	for name, tc := range map[string]struct {
		pod     string
		warning string // a substring of the expected warning, or ""
	}{
		"opted out":    {pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","annotations":{"sidecar.minimesh.io/inject":"false"}},"spec":{"containers":[{"name":"app","image":"app"}]}}`},
		"host network": {pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"hostNetwork":true,"containers":[{"name":"app","image":"app"}]}}`},
		"name clash": {
			pod:     `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"app","image":"app"}],"volumes":[{"name":"minimesh-token","emptyDir":{}}]}}`,
			warning: `no sidecar injected into pod shop/web-*: volume "minimesh-token": the name is reserved`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			resp := admit(t, podCreate(t, []byte(tc.pod)))
			if !resp.Allowed || resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("allowed=%v patch=%s, want allowed without patch", resp.Allowed, resp.Patch)
			}
			got := strings.Join(resp.Warnings, "\n")
			if (tc.warning == "") != (got == "") || !strings.Contains(got, tc.warning) {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}

// TestWebhookIgnoresOtherRequests: updates, other resources and
// subresources pass untouched.
func TestWebhookIgnoresOtherRequests(t *testing.T) {
	pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"app","image":"app"}]}}`)
	for name, change := range map[string]func(*admissionv1.AdmissionRequest){
		"update": func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update },
		"deployment": func(r *admissionv1.AdmissionRequest) {
			r.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		},
		"subresource": func(r *admissionv1.AdmissionRequest) { r.SubResource = "ephemeralcontainers" },
	} {
		t.Run(name, func(t *testing.T) {
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(podCreate(t, pod), &review); err != nil {
				t.Fatal(err)
			}
			change(review.Request)
			body, _ := json.Marshal(review)
			if resp := admit(t, body); !resp.Allowed || resp.Patch != nil {
				t.Errorf("allowed=%v patch=%s, want allowed without patch", resp.Allowed, resp.Patch)
			}
		})
	}
}

// TestWebhookDeniesMalformedPod: a pod that cannot be decoded is refused
// with a message that says so.
func TestWebhookDeniesMalformedPod(t *testing.T) {
	resp := admit(t, podCreate(t, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":"app"}}`)))
	if resp.Allowed {
		t.Fatal("a malformed pod was allowed")
	}
	if resp.Result == nil || !strings.Contains(resp.Result.Message, "pod in namespace shop cannot be decoded") || resp.Result.Code != 400 {
		t.Errorf("result = %+v", resp.Result)
	}
}

// TestWebhookRefusesBadRequests: what is not an AdmissionReview POST gets an
// HTTP error, not a review.
func TestWebhookRefusesBadRequests(t *testing.T) {
	for name, tc := range map[string]struct {
		method, body string
		want         int
	}{
		"GET":        {http.MethodGet, "", http.StatusMethodNotAllowed},
		"not JSON":   {http.MethodPost, "<xml/>", http.StatusBadRequest},
		"no request": {http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			NewWebhook(Config{}).ServeHTTP(rec, httptest.NewRequest(tc.method, "/inject", strings.NewReader(tc.body)))
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	if err := (Config{}).Check(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (Config{TokenExchangeURL: "http://minimesh:15014/token"}).Check(); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http token exchange: error = %v, want one about https", err)
	}
}
