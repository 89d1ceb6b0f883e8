// Package kubesource is serve's Kubernetes mode (--kubernetes): the mesh
// read from a cluster (Services, EndpointSlices, Pods and Istio's kinds),
// the CA kept in a Secret that replicas share, proxies authenticated by
// their service-account tokens, and the token exchange and sidecar
// injection servers that injected pods call.
//
// The runner takes it as a runner.ClusterConfig and never imports it, so
// that a control plane fed from files links none of Kubernetes' client
// libraries: cmd/minimesh links this package only when built with
// -tags kubernetes (as the container image is).
package kubesource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/inject"
	"github.com/minimesh/minimesh/kubeauth"
	"github.com/minimesh/minimesh/kubeca"
	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/runner"
	"github.com/minimesh/minimesh/watcher/kube"
)

// Config makes `serve` read the mesh from a cluster instead of a directory
// (--kubernetes): set it as runner.Config.Cluster.
type Config struct {
	// RESTConfig reaches the API server (kube.RESTConfig).
	RESTConfig *rest.Config
	// Namespaces limits what is watched; empty: all.
	Namespaces []string
	// Namespace is minimesh's own (the CA secret and the Lease live
	// there); PodName names this replica in the Lease.
	Namespace string
	PodName   string
	// CASecret is the Secret holding the CA ("minimesh-ca").
	CASecret string
	// ServiceName is minimesh's Service; its DNS names go into the serving
	// certificate of the xDS, STS and webhook servers.
	ServiceName string
	// STSAddress serves the token exchange sidecars call ("" off).
	STSAddress string
	// WebhookAddress serves the sidecar injector ("" off), and
	// WebhookConfiguration names the MutatingWebhookConfiguration whose
	// caBundle the leader fills in.
	WebhookAddress       string
	WebhookConfiguration string
	// Inject configures the sidecars the webhook adds.
	Inject inject.Config
}

// Defaults of Config.
const (
	DefaultCASecret             = "minimesh-ca"
	DefaultServiceName          = "minimesh"
	DefaultWebhookConfiguration = "minimesh-sidecar-injector"
)

// source is what --kubernetes adds to a control plane: the watcher, the
// shared CA, token authentication, and the servers sidecars need. It is
// the runner.Cluster that Config opens.
type source struct {
	cfg     Config
	client  kubernetes.Interface
	watcher *kube.Watcher
	replica *kubeca.Replica
	ca      *certs.CA
	tokens  *kubeauth.Reviewer
}

// Open connects to the cluster, joins the CA leader election and waits for
// the shared CA, and prepares the watcher (runner.ClusterConfig).
func (k Config) Open(ctx context.Context, cfg runner.Config) (runner.Cluster, error) {
	if k.RESTConfig == nil {
		return nil, errors.New("kubernetes: no API server configuration")
	}
	if k.Namespace == "" {
		k.Namespace = "minimesh-system"
	}
	if k.PodName == "" {
		k.PodName, _ = os.Hostname()
	}
	if k.CASecret == "" {
		k.CASecret = DefaultCASecret
	}
	if k.ServiceName == "" {
		k.ServiceName = DefaultServiceName
	}
	if k.WebhookConfiguration == "" {
		k.WebhookConfiguration = DefaultWebhookConfiguration
	}
	routeKlog(cfg.Log.Named("client-go"))
	client, err := kubernetes.NewForConfig(k.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ca, replica, err := kubeca.Start(ctx, kubeca.Config{
		Client: client, Namespace: k.Namespace, SecretName: k.CASecret, Identity: k.PodName,
		CA:  certs.Options{TrustDomain: cfg.TrustDomain, CertLifetime: cfg.CertLifetime, Deterministic: true},
		Log: cfg.Log.Named("ca"),
	})
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("certificate authority ready", zap.String("secret", k.Namespace+"/"+k.CASecret),
		zap.String("trust_domain", ca.TrustDomain()))
	w, err := kube.New(kube.Config{
		RESTConfig: k.RESTConfig, Namespaces: k.Namespaces, DomainSuffix: cfg.DomainSuffix,
		RootNamespace: cfg.RootNamespace, HoldOff: cfg.HoldOff, MaxDelay: cfg.MaxDelay,
		Log: cfg.Log.Named("watcher"), Registry: cfg.Registry,
		WritesStatus: replica.IsLeader,
	})
	if err != nil {
		return nil, err
	}
	return &source{cfg: k, client: client, watcher: w, replica: replica, ca: ca,
		tokens: kubeauth.NewReviewer(client)}, nil
}

// CA is the CA the replicas share, from its Secret.
func (k *source) CA() *certs.CA { return k.ca }

// Tokens checks proxies' service-account tokens with the API server.
func (k *source) Tokens() runner.TokenReviewer {
	if k.tokens == nil {
		return nil // not a nil *kubeauth.Reviewer in a non-nil interface
	}
	return k.tokens
}

// ServiceNames are the DNS names of minimesh's Service.
func (k *source) ServiceNames(domainSuffix string) []string {
	svc, ns := k.cfg.ServiceName, k.cfg.Namespace
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domainSuffix}
}

// Run watches the cluster (mesh source).
func (k *source) Run(ctx context.Context, publish func(*mesh.Snapshot)) error {
	return k.watcher.Run(ctx, publish)
}

// ServeHTTPS serves the token exchange and the injector on their
// addresses, with a serving certificate for minimesh's Service, and runs
// the leader's duties. It returns once the listeners are open.
func (k *source) ServeHTTPS(ctx context.Context, tlsConfig *tls.Config, log *zap.Logger) error {
	go k.replica.PublishRootCert(ctx, k.ca.TrustBundlePEM())
	go func() {
		// Events and status of objects that were already invalid before
		// this replica led are written now, not at the next change.
		select {
		case <-k.replica.Leading():
			k.watcher.Resync()
		case <-ctx.Done():
		}
	}()
	go k.fillWebhookCABundle(ctx, log)
	servers := map[string]http.Handler{}
	if k.cfg.STSAddress != "" {
		mux := http.NewServeMux()
		mux.Handle(kubeauth.STSPath, kubeauth.NewSTSHandler(k.tokens, log.Named("sts")))
		servers[k.cfg.STSAddress] = mux
	}
	if k.cfg.WebhookAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/inject", inject.NewWebhook(k.cfg.Inject))
		servers[k.cfg.WebhookAddress] = mux
	}
	for addr, h := range servers {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: zap.NewStdLog(log.Named("https"))}
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		go func() {
			if err := srv.ServeTLS(lis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("https server stopped", zap.String("address", addr), zap.Error(err))
			}
		}()
		log.Info("serving https", zap.String("address", lis.Addr().String()))
	}
	return nil
}

// fillWebhookCABundle writes the mesh root into the injector's
// MutatingWebhookConfiguration, so that the API server trusts the
// webhook's certificate. Only the leader writes it.
func (k *source) fillWebhookCABundle(ctx context.Context, log *zap.Logger) {
	select {
	case <-k.replica.Leading():
	case <-ctx.Done():
		return
	}
	hooks := k.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	bundle := k.ca.TrustBundlePEM()
	for {
		mwc, err := hooks.Get(ctx, k.cfg.WebhookConfiguration, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			log.Info("no MutatingWebhookConfiguration to fill in: sidecar injection by webhook is off",
				zap.String("name", k.cfg.WebhookConfiguration))
			return
		}
		if err == nil {
			changed := false
			for i := range mwc.Webhooks {
				if string(mwc.Webhooks[i].ClientConfig.CABundle) != string(bundle) {
					mwc.Webhooks[i].ClientConfig.CABundle = bundle
					changed = true
				}
			}
			if !changed {
				return
			}
			if _, err = hooks.Update(ctx, mwc, metav1.UpdateOptions{}); err == nil {
				log.Info("filled in the injector webhook's caBundle", zap.String("name", k.cfg.WebhookConfiguration))
				return
			}
		}
		log.Warn("cannot fill in the injector webhook's caBundle; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
