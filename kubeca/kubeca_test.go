package kubeca

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/internal/kubetest"
)

// TestReplicasShareOneCA starts three replicas at once on an empty
// cluster: exactly one creates the CA secret, all load the same root, and
// all issue the same certificate for the same workload.
func TestReplicasShareOneCA(t *testing.T) {
	env := kubetest.Start(t)
	env.Namespace(t, "minimesh-system")
	env.Namespace(t, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const n = 3
	cas := make([]*certs.CA, n)
	replicas := make([]*Replica, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, r, err := Start(ctx, Config{
				Client: env.Client(t), Namespace: "minimesh-system", SecretName: "minimesh-ca",
				Identity: []string{"replica-a", "replica-b", "replica-c"}[i],
				CA:       certs.Options{Deterministic: true},
				// Short timings so the test is quick.
				LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond,
			})
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
				return
			}
			cas[i], replicas[i] = ca, r
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	id := certs.Identity{Namespace: "demo", ServiceAccount: "echo"}
	first, err := cas[0].Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if !bytes.Equal(cas[i].TrustBundlePEM(), cas[0].TrustBundlePEM()) {
			t.Errorf("replica %d loaded another root", i)
		}
		c, err := cas[i].Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.ChainPEM, first.ChainPEM) || !bytes.Equal(c.KeyPEM, first.KeyPEM) {
			t.Errorf("replica %d issued another certificate for %s", i, id.SPIFFEID())
		}
	}
	lease, err := env.Client(t).CoordinationV1().Leases("minimesh-system").Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader: %s", *lease.Spec.HolderIdentity)

	// The leader publishes the root in every namespace.
	for _, r := range replicas {
		go r.PublishRootCert(ctx, cas[0].TrustBundlePEM())
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := env.Client(t).CoreV1().ConfigMaps("demo").Get(ctx, RootCertConfigMap, metav1.GetOptions{})
		return err == nil && bytes.Contains([]byte(cm.Data[RootCertKey]), bytes.TrimSpace(cas[0].TrustBundlePEM())), nil
	})
	if err != nil {
		t.Fatalf("root-cert ConfigMap not published in namespace demo: %v", err)
	}
	env.Namespace(t, "later")
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := env.Client(t).CoreV1().ConfigMaps("later").Get(ctx, RootCertConfigMap, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("root-cert ConfigMap not published in a new namespace: %v", err)
	}
	creators := 0
	for _, r := range replicas {
		if r.CreatedSecret() {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d replicas created the CA secret, want exactly one", creators)
	}
}

// A secret that holds no CA files is refused with its name, not
// overwritten.
func TestSecretWithoutKnownKeysIsAnError(t *testing.T) {
	env := kubetest.Start(t)
	env.Namespace(t, "minimesh-system")
	ctx := context.Background()
	_, err := env.Client(t).CoreV1().Secrets("minimesh-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "minimesh-ca"},
		Data:       map[string][]byte{"tls.crt": []byte("x")},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, _, err = Start(ctx, Config{Client: env.Client(t), Namespace: "minimesh-system", SecretName: "minimesh-ca", Identity: "a"})
	if err == nil {
		t.Fatal("a CA secret without CA files was accepted")
	}
	t.Logf("error: %v", err)
}
