package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1alpha1 "istio.io/api/meta/v1alpha1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/minimesh/minimesh/mesh"
)

// An object the build rejects is reported where its author looks: a
// Warning Event on the object (kubectl describe), a status condition when
// its CRD has a status subresource (kubectl get -o yaml), the log, and a
// counter. An error is reported once per generation of the object: the
// next rebuild, triggered by some other object, does not report it again.

const (
	// eventReason is the reason of the Events about invalid objects.
	eventReason = "InvalidConfig"
	// conditionType is the status condition minimesh sets on Istio objects.
	conditionType = "Valid"
	// fieldManager names minimesh in managed fields.
	fieldManager = "minimesh"
)

// statusReporter writes Events, status conditions and the error counter.
// It is used by the watcher's loop only.
type statusReporter struct {
	log         *zap.Logger
	istio       istioclient.Interface
	kube        kubernetes.Interface
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	errors      *prometheus.CounterVec
	// reported are the errors already counted, and evented those already
	// written as Events, by object UID, generation and message.
	reported, evented map[string]bool
	// writes says whether this replica writes Events and status; nil: yes.
	writes func() bool
	// noStatus are the kinds whose status cannot be written (no status
	// subresource, or not allowed), each logged once.
	noStatus map[string]bool
	// exists reports whether an object is (still) in the caches.
	exists func(kind, namespace, name string) bool
}

func newStatusReporter(cfg Config, kc kubernetes.Interface, ic istioclient.Interface) (*statusReporter, error) {
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "minimesh_kube_config_errors_total",
		Help: "Errors found in Kubernetes objects (each counted once per generation of the object), by kind.",
	}, []string{"kind"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(errs); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return nil, fmt.Errorf("kube watcher: registering metrics: %w", err)
			}
			errs = already.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	b := record.NewBroadcaster()
	return &statusReporter{
		log:         cfg.Log,
		istio:       ic,
		kube:        kc,
		broadcaster: b,
		recorder:    b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: cfg.Component}),
		errors:      errs,
		reported:    map[string]bool{},
		evented:     map[string]bool{},
		writes:      cfg.WritesStatus,
		noStatus:    map[string]bool{},
	}, nil
}

// start begins sending Events to the API server.
func (r *statusReporter) start() {
	r.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.kube.CoreV1().Events("")})
}

// stop stops sending Events.
func (r *statusReporter) stop() { r.broadcaster.Shutdown() }

// report reports the new errors in diags, and brings the status condition
// of every Istio object up to date.
//
// Every replica counts errors; only the one Config.WritesStatus allows
// (the leader) writes Events and conditions, so that several replicas do
// not repeat each Event.
func (r *statusReporter) report(ctx context.Context, diags []mesh.Diagnostic, origins map[string]origin) {
	writes := r.writes == nil || r.writes()
	errs := errorsByObject(diags)
	current := map[string]bool{}
	for _, name := range sortedKeys(errs) {
		o, ok := origins[name]
		if !ok {
			continue
		}
		for _, d := range errs[name] {
			key := fmt.Sprintf("%s/%d/%s", o.ref.UID, o.generation, d.Error())
			current[key] = true
			if !r.reported[key] {
				r.errors.WithLabelValues(o.ref.Kind).Inc()
			}
			if writes && !r.evented[key] {
				r.recorder.Event(&o.ref, corev1.EventTypeWarning, eventReason, eventMessage(d))
			}
		}
	}
	r.reported = current
	if !writes {
		return // another replica writes Events and status
	}
	r.evented = current
	for _, name := range sortedKeys(origins) {
		if o := origins[name]; o.istio != nil {
			r.updateCondition(ctx, o, errs[name])
		}
	}
}

// errorsByObject returns the errors of diags by the object they are about.
func errorsByObject(diags []mesh.Diagnostic) map[string][]mesh.Diagnostic {
	out := map[string][]mesh.Diagnostic{}
	for _, d := range diags {
		if d.Severity == mesh.SeverityError && d.Object != "" {
			out[d.Object] = append(out[d.Object], d)
		}
	}
	return out
}

// eventMessage is the text of an Event about d: the field and what is
// wrong with it (the Event already names the object).
func eventMessage(d mesh.Diagnostic) string {
	if d.Field == "" {
		return d.Message
	}
	return d.Field + ": " + d.Message
}

// updateCondition sets the Valid condition of an Istio object: False with
// the errors when it has some; True when it had been False and is fixed.
// An object minimesh never complained about is not written to.
func (r *statusReporter) updateCondition(ctx context.Context, o origin, errs []mesh.Diagnostic) {
	kind := o.ref.Kind
	cur := findCondition(o.istio.conditions, conditionType)
	want := &metav1alpha1.IstioCondition{Type: conditionType, ObservedGeneration: o.generation}
	switch {
	case len(errs) > 0:
		want.Status, want.Reason = "False", eventReason
		msgs := make([]string, len(errs))
		for i, d := range errs {
			msgs[i] = eventMessage(d)
		}
		want.Message = strings.Join(msgs, "; ")
	case cur != nil && cur.GetStatus() != "True":
		want.Status, want.Reason, want.Message = "True", "Valid", "accepted by minimesh"
	default:
		return
	}
	if cur != nil && cur.GetStatus() == want.Status && cur.GetMessage() == want.Message &&
		cur.GetObservedGeneration() == want.ObservedGeneration {
		return // already says so
	}
	if r.noStatus[kind] {
		return
	}
	want.LastTransitionTime = timestamppb.New(time.Now().Truncate(time.Second))
	if cur != nil && cur.GetStatus() == want.Status {
		want.LastTransitionTime = cur.GetLastTransitionTime()
	}
	err := r.patchStatus(ctx, kind, o.ref.Namespace, o.ref.Name, withCondition(o.istio.conditions, want))
	switch {
	case err == nil:
	case apierrors.IsNotFound(err) && r.exists(kind, o.ref.Namespace, o.ref.Name):
		// The object is there, its status is not: the CRD has no status
		// subresource (the API server's answer names the object either way).
		r.noStatus[kind] = true
		r.log.Info("the CRD has no status subresource: invalid objects of this kind get Events only",
			zap.String("kind", kind))
	case apierrors.IsForbidden(err):
		r.noStatus[kind] = true
		r.log.Warn("not allowed to write status: invalid objects of this kind get Events only",
			zap.String("kind", kind), zap.Error(err))
	case apierrors.IsNotFound(err):
		// Deleted meanwhile.
	default:
		r.log.Warn("cannot write status condition", zap.String("object", objectName(mesh.Ref{
			Kind: kind, Namespace: o.ref.Namespace, Name: o.ref.Name})), zap.Error(err))
	}
}

// findCondition returns the condition of that type, or nil.
func findCondition(conditions []*metav1alpha1.IstioCondition, typ string) *metav1alpha1.IstioCondition {
	for _, c := range conditions {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// withCondition returns conditions with c in place of the condition of
// its type. The others (Istio's own, if it runs too) are kept.
func withCondition(conditions []*metav1alpha1.IstioCondition, c *metav1alpha1.IstioCondition) []*metav1alpha1.IstioCondition {
	out := slices.DeleteFunc(slices.Clone(conditions), func(x *metav1alpha1.IstioCondition) bool {
		return x.GetType() == c.GetType()
	})
	return append(out, c)
}

// patchStatus replaces the status conditions of an Istio object (a merge
// patch of the status subresource; the rest of the status is left alone).
func (r *statusReporter) patchStatus(ctx context.Context, kind, ns, name string, conditions []*metav1alpha1.IstioCondition) error {
	data, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conditions}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pt, opts := types.MergePatchType, metav1.PatchOptions{FieldManager: fieldManager}
	switch kind {
	case kindVirtualService:
		_, err = r.istio.NetworkingV1().VirtualServices(ns).Patch(ctx, name, pt, data, opts, "status")
	case kindDestinationRule:
		_, err = r.istio.NetworkingV1().DestinationRules(ns).Patch(ctx, name, pt, data, opts, "status")
	case kindServiceEntry:
		_, err = r.istio.NetworkingV1().ServiceEntries(ns).Patch(ctx, name, pt, data, opts, "status")
	case kindWorkloadEntry:
		_, err = r.istio.NetworkingV1().WorkloadEntries(ns).Patch(ctx, name, pt, data, opts, "status")
	case kindPeerAuthentication:
		_, err = r.istio.SecurityV1().PeerAuthentications(ns).Patch(ctx, name, pt, data, opts, "status")
	case kindSidecar:
		_, err = r.istio.NetworkingV1().Sidecars(ns).Patch(ctx, name, pt, data, opts, "status")
	default:
		return fmt.Errorf("no status for kind %s", kind)
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
