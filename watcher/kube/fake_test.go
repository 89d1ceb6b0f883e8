package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher/file"
)

// fakeWatcher returns a watcher of fake clientsets holding objs (Istio
// objects go to the Istio clientset, the rest to the Kubernetes one).
func fakeWatcher(t *testing.T, cfg Config, objs ...runtime.Object) (*Watcher, *kubefake.Clientset, *istiofake.Clientset) {
	t.Helper()
	// Istio's fake clientset cannot stream a list over a watch
	// (WatchList); its informers must list, then watch.
	clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
	var kubeObjs, istioObjs []runtime.Object
	for _, o := range objs {
		if _, ok := asIstioObject(o); ok {
			istioObjs = append(istioObjs, o)
		} else {
			kubeObjs = append(kubeObjs, o)
		}
	}
	kc, ic := kubefake.NewClientset(kubeObjs...), istiofake.NewSimpleClientset(istioObjs...)
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	w, err := newWatcher(cfg, kc, ic)
	if err != nil {
		t.Fatal(err)
	}
	return w, kc, ic
}

// ignoreSource compares snapshots without where each object was read (a
// file path for one source, "kubernetes" for the other).
var ignoreSource = cmpopts.IgnoreFields(mesh.Ref{}, "Source")

// The promise of the package: the same Istio objects make the same
// Snapshot whether they come from files or from the cluster.
func TestSameSnapshotAsFileWatcher(t *testing.T) {
	for _, dir := range []string{"../../examples/canary", "../../examples/mtls"} {
		t.Run(dir, func(t *testing.T) {
			fromFiles, problems, err := file.New(file.Config{Dir: dir}).Load()
			if err != nil {
				t.Fatal(err)
			}
			w, _, _ := fakeWatcher(t, Config{}, istioObjects(t, dir)...)
			p, _ := runWatcher(t, w)
			fromCluster, _ := p.waitFor(t, "the first snapshot", 10*time.Second, func(*mesh.Snapshot) bool { return true })

			if len(fromFiles.Services) == 0 || len(fromFiles.VirtualServices) == 0 {
				t.Fatalf("%s: the file watcher found no services or routes (problems: %v): the comparison would prove nothing", dir, problems)
			}
			if d := cmp.Diff(fromFiles, fromCluster, ignoreSource); d != "" {
				t.Errorf("snapshot from the cluster differs from the one from files (-files +cluster):\n%s", d)
			}
		})
	}
}

// An invalid VirtualService gets one Warning Event naming the field, a
// Valid=False status condition and one count, however many rebuilds
// follow; the rest of the mesh is served.
func TestInvalidObjectReportedOncePerGeneration(t *testing.T) {
	objs := istioObjects(t, "../../examples/canary")
	for _, o := range objs {
		if vs, ok := o.(*networkingv1.VirtualService); ok && vs.Name == "my-app-vs" {
			setWeights(t, o, 90, 20)
		}
	}
	reg := prometheus.NewRegistry()
	w, kc, ic := fakeWatcher(t, Config{Registry: reg}, objs...)
	p, _ := runWatcher(t, w)
	p.waitFor(t, "my-app without routes", 10*time.Second, func(s *mesh.Snapshot) bool {
		return len(s.Services) == 1 && len(s.VirtualServices) == 0
	})

	ev := waitForEvent(t, kc, "default", "my-app-vs")
	if ev.Type != corev1.EventTypeWarning || ev.Reason != "InvalidConfig" || !strings.Contains(ev.Message, "spec.http[0].route") ||
		ev.InvolvedObject.Kind != "VirtualService" || ev.InvolvedObject.APIVersion != "networking.istio.io/v1" {
		t.Errorf("event = %s %s %s/%s %q, want a Warning InvalidConfig on the VirtualService naming spec.http[0].route",
			ev.Type, ev.Reason, ev.InvolvedObject.APIVersion, ev.InvolvedObject.Kind, ev.Message)
	}
	waitForCondition(t, func() (string, string) {
		vs, err := ic.NetworkingV1().VirtualServices("default").Get(context.Background(), "my-app-vs", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := findCondition(vs.Status.GetConditions(), "Valid")
		return c.GetStatus(), c.GetMessage()
	}, "False", "spec.http[0].route")

	// Another change: a rebuild that finds the same error again.
	if _, err := kc.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several debounce periods
	if got := testutil.ToFloat64(w.status.errors.WithLabelValues("VirtualService")); got != 1 {
		t.Errorf("minimesh_kube_config_errors_total{kind=VirtualService} = %v, want 1", got)
	}
	events, err := kc.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].Count > 1 {
		t.Errorf("events = %d (count %d), want the one reported once", len(events.Items), events.Items[0].Count)
	}
	if n, err := testutil.GatherAndCount(reg, "minimesh_kube_config_errors_total"); err != nil || n != 1 {
		t.Errorf("registered series = %d, %v; want 1", n, err)
	}
}

// setWeights sets the weights of the first HTTP rule of a VirtualService.
func setWeights(t *testing.T, o runtime.Object, weights ...int32) {
	t.Helper()
	vs, ok := o.(*networkingv1.VirtualService)
	if !ok || len(vs.Spec.Http) == 0 || len(vs.Spec.Http[0].Route) != len(weights) {
		t.Fatalf("%T is not a VirtualService with %d destinations in its first rule", o, len(weights))
	}
	for i, w := range weights {
		vs.Spec.Http[0].Route[i].Weight = w
	}
}

// waitForEvent returns the first Event minimesh wrote about the named
// object (the API server writes its own, about a Service of the same name
// for example).
func waitForEvent(t *testing.T, kc kubernetes.Interface, ns, name string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, err := kc.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events.Items {
			if ev.InvolvedObject.Name == name && ev.Source.Component == "minimesh" {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Event about %s/%s within 10s (events: %v)", ns, name, events.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForCondition polls get until it returns status and a message
// containing msg.
func waitForCondition(t *testing.T, get func() (string, string), status, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, m := get()
		if s == status && strings.Contains(m, msg) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition Valid = %q %q, want %q with %q", s, m, status, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
