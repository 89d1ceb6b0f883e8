package kube

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// With Istio CRDs that have no status subresource, invalid objects still
// get Events, and the missing subresource is logged once, not per object.
func TestClusterCRDWithoutStatus(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "shop")
	ext, err := apiextensions.NewForConfig(c.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "virtualservices.networking.istio.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range crd.Spec.Versions {
		crd.Spec.Versions[i].Subresources = nil
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the API server reloads the CRD's handler

	core, logs := observer.New(zapcore.InfoLevel)
	_, _ = c.watch(t, Config{Log: zap.New(core)})
	vs := c.istio.NetworkingV1().VirtualServices("shop")
	for _, name := range []string{"a", "b"} {
		bad := reviewsVS("shop", 10, 10)
		bad.Name = name
		if _, err := vs.Create(ctx, bad, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitForEvent(t, c.kube, "shop", name)
	}
	time.Sleep(200 * time.Millisecond)
	var noStatus, failed int
	for _, e := range logs.All() {
		switch {
		case strings.Contains(e.Message, "no status subresource"):
			noStatus++
		case strings.Contains(e.Message, "status"):
			failed++
			t.Logf("log: %s %v", e.Message, e.ContextMap())
		}
	}
	if noStatus != 1 || failed != 0 {
		t.Errorf("logged 'no status subresource' %d times and other status problems %d times, want once and never", noStatus, failed)
	}
}
