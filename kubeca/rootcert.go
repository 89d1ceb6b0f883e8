package kubeca

import (
	"bytes"
	"context"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// PublishRootCert keeps the ConfigMap RootCertConfigMap, holding bundle,
// in every namespace (new ones included) while this replica leads, until
// ctx ends. Only the leader writes, so replicas never fight over it: a
// replica that lost the Lease stops writing (its informer keeps running,
// ready for the next time it leads).
func (r *Replica) PublishRootCert(ctx context.Context, bundle []byte) {
	select {
	case <-r.leader:
	case <-ctx.Done():
		return
	}
	factory := informers.NewSharedInformerFactory(r.cfg.Client, 10*time.Minute)
	nsInformer := factory.Core().V1().Namespaces().Informer()
	nsInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				r.ensureRootCert(ctx, ns, bundle)
			}
		},
		UpdateFunc: func(_, obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				r.ensureRootCert(ctx, ns, bundle)
			}
		},
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

// ensureRootCert creates or corrects the root-cert ConfigMap of one
// namespace.
func (r *Replica) ensureRootCert(ctx context.Context, ns *corev1.Namespace, bundle []byte) {
	if !r.IsLeader() || ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return
	}
	cms := r.cfg.Client.CoreV1().ConfigMaps(ns.Name)
	want := string(bytes.TrimSpace(bundle)) + "\n"
	cm, err := cms.Get(ctx, RootCertConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootCertConfigMap, Namespace: ns.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "minimesh"}},
			Data: map[string]string{RootCertKey: want},
		}, metav1.CreateOptions{})
	case err == nil && cm.Data[RootCertKey] != want:
		cm = cm.DeepCopy()
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[RootCertKey] = want
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
		r.cfg.Log.Warn("cannot publish the root certificate", zap.String("namespace", ns.Name),
			zap.String("configmap", RootCertConfigMap), zap.Error(err))
	}
}
