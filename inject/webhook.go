package inject

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// maxReviewBytes bounds an AdmissionReview: a pod is at most ~1.5 MB in
// etcd, and the review can carry it twice.
const maxReviewBytes = 8 << 20

// NewWebhook returns the mutating admission webhook that injects the
// sidecar into pods as they are created (admission.k8s.io/v1
// AdmissionReview, POSTed as JSON). Which namespaces it sees is up to the
// MutatingWebhookConfiguration's namespace selector.
//
// It never blocks a pod it cannot inject: a pod that is opted out, already
// injected, on the host's network, or that clashes with the sidecar's names
// is allowed unchanged (the last with a warning that kubectl prints). Only a
// pod that cannot be decoded is denied, with the reason.
func NewWebhook(c Config) http.Handler {
	return webhook{config: c.withDefaults()}
}

type webhook struct {
	config Config
}

func (h webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission webhook: want POST of an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		http.Error(w, "admission webhook: reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("admission webhook: want an admission.k8s.io/v1 AdmissionReview with a request (%v)", err),
			http.StatusBadRequest)
		return
	}
	response := h.review(review.Request)
	response.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: response,
	})
	if err != nil {
		http.Error(w, "admission webhook: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// podResource is what the webhook injects: pods, not their subresources.
var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// review decides on one admission request.
func (h webhook) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	allowed := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return allowed
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return denied(fmt.Sprintf("minimesh sidecar injection: pod in namespace %s cannot be decoded: %v", req.Namespace, err))
	}
	ops, skip, err := Patch(h.config, &pod.ObjectMeta, &pod.Spec)
	switch {
	case err != nil:
		allowed.Warnings = []string{fmt.Sprintf("minimesh: no sidecar injected into pod %s: %v", podName(req, &pod), err)}
		return allowed
	case skip != "":
		return allowed
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		allowed.Warnings = []string{fmt.Sprintf("minimesh: no sidecar injected into pod %s: %v", podName(req, &pod), err)}
		return allowed
	}
	allowed.Patch = patch
	allowed.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
	return allowed
}

// denied refuses the request with a message the user sees.
func denied(message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: message},
	}
}

// podName names the pod in messages. A pod created by a controller often
// has only a generateName prefix at admission time.
func podName(req *admissionv1.AdmissionRequest, pod *corev1.Pod) string {
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	return req.Namespace + "/" + name
}
