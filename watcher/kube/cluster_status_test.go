package kube

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/minimesh/minimesh/mesh"
)

// An invalid VirtualService gets a Warning Event naming the field and a
// Valid=False condition, is counted, and its last good version keeps being
// served; once fixed, the condition turns True.
func TestClusterInvalidVirtualService(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "shop")
	if _, err := c.kube.CoreV1().Services("shop").Create(ctx, reviewsKubeService("shop"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.istio.NetworkingV1().DestinationRules("shop").Create(ctx, reviewsDR("shop"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, p := c.watch(t, Config{Registry: reg})
	vsClient := c.istio.NetworkingV1().VirtualServices("shop")
	step(t, p, "VirtualService created (90/10)", func() error {
		_, err := vsClient.Create(ctx, reviewsVS("shop", 90, 10), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return slices.Equal(weights(s, reviewsHost), []uint32{90, 10}) })

	setWeights := func(v1, v2 int32) error {
		vs, err := vsClient.Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			return err
		}
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = v1, v2
		_, err = vsClient.Update(ctx, vs, metav1.UpdateOptions{})
		return err
	}
	// The weights sum to 110: invalid. Wait for a rebuild after the edit:
	// the snapshot does not change, so watch for the Event.
	if err := setWeights(90, 20); err != nil {
		t.Fatal(err)
	}
	ev := waitForEvent(t, c.kube, "shop", "reviews")
	t.Logf("event: %s %s on %s %s: %s", ev.Type, ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
	if ev.Type != corev1.EventTypeWarning || ev.Reason != "InvalidConfig" || ev.InvolvedObject.Kind != "VirtualService" ||
		!strings.Contains(ev.Message, "spec.http[0].route") {
		t.Errorf("event = %s %s on %s: %q, want a Warning InvalidConfig on the VirtualService naming spec.http[0].route",
			ev.Type, ev.Reason, ev.InvolvedObject.Kind, ev.Message)
	}
	time.Sleep(200 * time.Millisecond) // a rebuild or two, in case one would take the routes away
	if got := weights(p.latest(), reviewsHost); !slices.Equal(got, []uint32{90, 10}) {
		t.Errorf("weights served while the VirtualService is invalid = %v, want the last good [90 10]", got)
	}
	conditionOf := func() (string, string) {
		vs, err := vsClient.Get(ctx, "reviews", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cond := findCondition(vs.Status.GetConditions(), conditionType)
		return cond.GetStatus(), cond.GetMessage()
	}
	waitForCondition(t, conditionOf, "False", "spec.http[0].route")
	_, msg := conditionOf()
	t.Logf("status condition Valid=False: %s", msg)

	// Fixed: served, condition True, still one error counted.
	step(t, p, "VirtualService fixed (80/20)", func() error { return setWeights(80, 20) },
		func(s *mesh.Snapshot) bool { return slices.Equal(weights(s, reviewsHost), []uint32{80, 20}) })
	waitForCondition(t, conditionOf, "True", "")
	if got := testutil.ToFloat64(w.status.errors.WithLabelValues("VirtualService")); got != 1 {
		t.Errorf("minimesh_kube_config_errors_total{kind=VirtualService} = %v, want 1", got)
	}
	if p.count() > 4 {
		t.Errorf("%d snapshots published, want at most 4: status writes must not cause publishes", p.count())
	}
}

// With a namespace filter, objects elsewhere are not seen.
func TestClusterNamespaceFilter(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "shop")
	c.env.Namespace(t, "other")
	_, p := c.watch(t, Config{Namespaces: []string{"shop"}})
	if _, err := c.kube.CoreV1().Services("other").Create(ctx, reviewsKubeService("other"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.createPod("other", "reviews-v1", "10.1.0.7", nil); err != nil {
		t.Fatal(err)
	}
	// Then one in the watched namespace: once it shows, the others had
	// their chance.
	snap := step(t, p, "Service created in the watched namespace", func() error {
		_, err := c.kube.CoreV1().Services("shop").Create(ctx, reviewsKubeService("shop"), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return service(s, reviewsHost) != nil })
	time.Sleep(200 * time.Millisecond)
	for _, s := range append(p.all(), snap) {
		if service(s, "reviews.other.svc.cluster.local") != nil || workload(s, "reviews-v1.other") != nil {
			t.Fatalf("objects of namespace other were published: %v", s.Services)
		}
	}
}

// A namespace being deleted contributes nothing.
func TestClusterTerminatingNamespace(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "shop")
	_, p := c.watch(t, Config{})
	step(t, p, "Service created", func() error {
		_, err := c.kube.CoreV1().Services("shop").Create(ctx, reviewsKubeService("shop"), metav1.CreateOptions{})
		return err
	}, func(s *mesh.Snapshot) bool { return service(s, reviewsHost) != nil })
	// No namespace controller runs: the namespace stays Terminating with
	// its Service in it.
	step(t, p, "Namespace deleted (Terminating)", func() error {
		return c.kube.CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{})
	}, func(s *mesh.Snapshot) bool { return service(s, reviewsHost) == nil })
}

// clusterRole returns the ClusterRole named minimesh from the shipped RBAC
// manifests.
func clusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(rbacPath)
	if err != nil {
		t.Fatalf("the RBAC minimesh ships is missing: %v", err)
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatalf("%s: %v", rbacPath, err)
		}
		if role.Kind == "ClusterRole" && role.Name == "minimesh" {
			return &role
		}
	}
	t.Fatalf("%s has no ClusterRole named minimesh", rbacPath)
	return nil
}
