package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestStart checks the harness itself: the API server answers, objects can
// be applied, and a service-account token is accepted by TokenReview and
// denied by RBAC until something grants it rights.
func TestStart(t *testing.T) {
	env := Start(t)
	ctx := context.Background()
	v, err := env.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %s, want %s", v.GitVersion, Version)
	}
	env.Namespace(t, "harness")
	manifest := filepath.Join(t.TempDir(), "cm.yaml")
	os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: harness\ndata:\n  a: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n  namespace: harness\n"), 0o644)
	env.Apply(t, manifest)
	if _, err := env.Client(t).CoreV1().ConfigMaps("harness").Get(ctx, "two", metav1.GetOptions{}); err != nil {
		t.Fatalf("applied object missing: %v", err)
	}

	token := env.ServiceAccountToken(t, "harness", "app", "minimesh")
	review, err := env.Client(t).AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"minimesh"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:harness:app" {
		t.Errorf("TokenReview = %+v, want authenticated as system:serviceaccount:harness:app", review.Status)
	}
	// A token for the minimesh audience is no API credential; one for the
	// API server is, but grants nothing yet.
	if _, err := kubernetes.NewForConfig(env.ConfigForToken(token)); err != nil {
		t.Fatal(err)
	}
	as, err := kubernetes.NewForConfig(env.ConfigForToken(env.ServiceAccountToken(t, "harness", "app")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.CoreV1().ConfigMaps("harness").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list as a service account without rights: err = %v, want Forbidden", err)
	}
}
