package kube

import (
	"context"
	"slices"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The kinds minimesh reads, as the informers are keyed.
const (
	kindService            = "Service"
	kindEndpointSlice      = "EndpointSlice"
	kindPod                = "Pod"
	kindNamespace          = "Namespace"
	kindVirtualService     = "VirtualService"
	kindDestinationRule    = "DestinationRule"
	kindPeerAuthentication = "PeerAuthentication"
	kindSidecar            = "Sidecar"
	kindServiceEntry       = "ServiceEntry"
	kindWorkloadEntry      = "WorkloadEntry"
)

// byServiceIndex indexes EndpointSlices by the Service they belong to
// ("namespace/name", from the kubernetes.io/service-name label).
const byServiceIndex = "service"

// caches holds an informer for every kind minimesh reads: one per watched
// namespace (or one for all namespaces), and one for the Namespaces
// themselves, which are cluster-scoped.
type caches struct {
	byKind         map[string][]cache.SharedIndexInformer
	kubeFactories  []informers.SharedInformerFactory
	istioFactories []istioinformers.SharedInformerFactory
}

// newCaches creates the informers (they start with start). namespaces
// empty means all of them.
func newCaches(kc kubernetes.Interface, ic istioclient.Interface, namespaces []string) *caches {
	c := &caches{byKind: map[string][]cache.SharedIndexInformer{}}
	cluster := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTransform(dropManagedFields))
	c.kubeFactories = append(c.kubeFactories, cluster)
	c.add(kindNamespace, cluster.Core().V1().Namespaces().Informer())

	for _, ns := range watchedNamespaces(namespaces) {
		kf := informers.NewSharedInformerFactoryWithOptions(kc, 0,
			informers.WithNamespace(ns), informers.WithTransform(dropManagedFields))
		f := istioinformers.NewSharedInformerFactoryWithOptions(ic, 0,
			istioinformers.WithNamespace(ns), istioinformers.WithTransform(dropManagedFields))
		c.kubeFactories = append(c.kubeFactories, kf)
		c.istioFactories = append(c.istioFactories, f)

		c.add(kindService, kf.Core().V1().Services().Informer())
		c.add(kindEndpointSlice, kf.Discovery().V1().EndpointSlices().Informer())
		c.add(kindPod, kf.Core().V1().Pods().Informer())
		c.add(kindVirtualService, f.Networking().V1().VirtualServices().Informer())
		c.add(kindDestinationRule, f.Networking().V1().DestinationRules().Informer())
		c.add(kindServiceEntry, f.Networking().V1().ServiceEntries().Informer())
		c.add(kindWorkloadEntry, f.Networking().V1().WorkloadEntries().Informer())
		c.add(kindPeerAuthentication, f.Security().V1().PeerAuthentications().Informer())
		c.add(kindSidecar, f.Networking().V1().Sidecars().Informer())
	}
	for _, inf := range c.byKind[kindEndpointSlice] {
		// Cannot fail: the informer has not started.
		_ = inf.AddIndexers(cache.Indexers{byServiceIndex: sliceService})
	}
	return c
}

// watchedNamespaces returns the namespaces to make informers for, without
// duplicates: metav1.NamespaceAll ("") alone when none is given.
func watchedNamespaces(namespaces []string) []string {
	if len(namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	out := slices.Clone(namespaces)
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *caches) add(kind string, inf cache.SharedIndexInformer) {
	c.byKind[kind] = append(c.byKind[kind], inf)
}

// each calls f for every informer with its kind.
func (c *caches) each(f func(kind string, inf cache.SharedIndexInformer)) {
	for kind, infs := range c.byKind {
		for _, inf := range infs {
			f(kind, inf)
		}
	}
}

// start starts every informer; they stop when ctx ends.
func (c *caches) start(ctx context.Context) {
	for _, f := range c.kubeFactories {
		f.Start(ctx.Done())
	}
	for _, f := range c.istioFactories {
		f.Start(ctx.Done())
	}
}

// waitForSync blocks until every informer has listed its kind once, and
// reports false if ctx ended first.
func (c *caches) waitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	c.each(func(_ string, inf cache.SharedIndexInformer) { synced = append(synced, inf.HasSynced) })
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// unsynced lists the kinds whose informers have not synced yet, for
// messages.
func (c *caches) unsynced() []string {
	var out []string
	c.each(func(kind string, inf cache.SharedIndexInformer) {
		if !inf.HasSynced() && !slices.Contains(out, kind) {
			out = append(out, kind)
		}
	})
	slices.Sort(out)
	return out
}

// shutdown stops the informers and waits for their goroutines.
func (c *caches) shutdown() {
	for _, f := range c.kubeFactories {
		f.Shutdown()
	}
	for _, f := range c.istioFactories {
		f.Shutdown()
	}
}

// list returns every cached object of a kind, across namespaces.
func (c *caches) list(kind string) []any {
	var out []any
	for _, inf := range c.byKind[kind] {
		out = append(out, inf.GetStore().List()...)
	}
	return out
}

// get returns the cached object of a kind with that namespace and name.
func (c *caches) get(kind, namespace, name string) (any, bool) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	for _, inf := range c.byKind[kind] {
		if obj, ok, err := inf.GetStore().GetByKey(key); err == nil && ok {
			return obj, true
		}
	}
	return nil, false
}

// endpointSlices returns the EndpointSlices of a Service.
func (c *caches) endpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, inf := range c.byKind[kindEndpointSlice] {
		objs, err := inf.GetIndexer().ByIndex(byServiceIndex, namespace+"/"+service)
		if err != nil {
			continue
		}
		for _, o := range objs {
			out = append(out, o.(*discoveryv1.EndpointSlice))
		}
	}
	return out
}

// sliceService is the index function of byServiceIndex.
func sliceService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}

// dropManagedFields removes metadata.managedFields from cached objects:
// minimesh never reads them, and they are often the biggest part of an
// object.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
