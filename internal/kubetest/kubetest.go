// Package kubetest runs a real Kubernetes API server for tests: etcd and
// kube-apiserver v1.37.2 on loopback, one pair per test.
//
// A fake clientset answers whatever a test tells it to; a real API server
// also checks schemas, RBAC, TokenReview and watch semantics, which is what
// a control plane reading a cluster has to get right. The binaries come from
// `bash hack/kube-testenv.sh` (Debian's etcd-server, kube-apiserver built
// from the Go module proxy). Without them a test skips, saying so; with
// MINIMESH_REQUIRE_KUBE=1 (set by .ci/run) it fails instead.
//
// The API server runs alone: no controller-manager, no scheduler, no
// kubelet. Services get no EndpointSlices, pods stay Pending, service
// accounts are not created for namespaces: tests create what they need.
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// Version is the kube-apiserver version hack/kube-testenv.sh builds.
const Version = "v1.37.2"

// RequireEnv is the environment variable that turns a missing API server
// into a test failure (CI sets it).
const RequireEnv = "MINIMESH_REQUIRE_KUBE"

// AssetsEnv names a directory holding the etcd and kube-apiserver binaries.
const AssetsEnv = "MINIMESH_KUBE_ASSETS"

// Env is a running etcd and kube-apiserver.
type Env struct {
	// Config reaches the API server as an administrator (system:masters).
	Config *rest.Config
	// Host is the API server's URL, "https://127.0.0.1:PORT".
	Host string
	// ServiceAccountIssuer is the issuer of the tokens the API server signs.
	ServiceAccountIssuer string
	mapper               meta.ResettableRESTMapper
}

// Assets returns the paths of the etcd and kube-apiserver binaries: in
// $MINIMESH_KUBE_ASSETS, else in the cache directory hack/kube-testenv.sh
// fills, else on $PATH.
func Assets() (etcd, apiserver string, err error) {
	var dirs []string
	if d := os.Getenv(AssetsEnv); d != "" {
		dirs = append(dirs, d)
	}
	if cache, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(cache, "minimesh", "kube-"+Version))
	}
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		return ""
	}
	etcd, apiserver = find("etcd"), find("kube-apiserver")
	var missing []string
	if etcd == "" {
		missing = append(missing, "etcd")
	}
	if apiserver == "" {
		missing = append(missing, "kube-apiserver")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("%s not found (looked in %s and $PATH): run `bash hack/kube-testenv.sh` "+
			"(installs etcd, builds kube-apiserver %s once, ~6 minutes)", strings.Join(missing, " and "),
			strings.Join(dirs, ", "), Version)
	}
	return etcd, apiserver, nil
}

// Start starts etcd and kube-apiserver for one test; both stop when the
// test ends. Without the binaries the test is skipped, or fails when
// MINIMESH_REQUIRE_KUBE=1.
func Start(t testing.TB) *Env {
	t.Helper()
	etcdBin, apiserverBin, err := Assets()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("kubetest: %v (%s is set: a missing API server is a failure)", err, RequireEnv)
		}
		t.Skipf("SKIPPED, needs a real API server: %v", err)
	}
	dir := t.TempDir()

	etcdURL := startEtcd(t, etcdBin, dir)
	env := startAPIServer(t, apiserverBin, dir, etcdURL)
	return env
}

// startEtcd runs etcd with its data in memory (/dev/shm when there is one)
// and returns its client URL.
func startEtcd(t testing.TB, bin, dir string) string {
	data, err := os.MkdirTemp(shmOr(dir), "etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	client, peer := freePort(t), freePort(t)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	start(t, "etcd", filepath.Join(dir, "etcd.log"), bin,
		"--name=kubetest",
		"--data-dir="+data,
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--log-level=warn",
	)
	waitFor(t, "etcd", filepath.Join(dir, "etcd.log"), 30*time.Second, func() bool {
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return clientURL
}

// startAPIServer runs kube-apiserver against etcd, with an admin token,
// RBAC, and a service-account issuer so that TokenRequest and TokenReview
// work.
func startAPIServer(t testing.TB, bin, dir, etcdURL string) *Env {
	adminToken := randomHex(t)
	tokens := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokens, []byte(adminToken+",kubetest-admin,kubetest-admin,system:masters\n"))
	saKey, saPub := serviceAccountKeys(t, dir)
	port := freePort(t)
	issuer := "https://kubernetes.default.svc.cluster.local"
	log := filepath.Join(dir, "kube-apiserver.log")
	start(t, "kube-apiserver", log, bin,
		"--etcd-servers="+etcdURL,
		"--etcd-prefix=/registry-"+randomHex(t)[:8],
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer="+issuer,
		"--service-account-key-file="+saPub,
		"--service-account-signing-key-file="+saKey,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--storage-media-type=application/json",
		"--v=0",
	)
	host := "https://127.0.0.1:" + strconv.Itoa(port)
	cfg := &rest.Config{
		Host:            host,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             1000,
		Burst:           1000,
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, "kube-apiserver", log, 60*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Config: cfg, Host: host, ServiceAccountIssuer: issuer,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// Client returns an admin clientset.
func (e *Env) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ConfigForToken returns a config for the same API server that
// authenticates with token instead of as the administrator.
func (e *Env) ConfigForToken(token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(e.Config)
	cfg.BearerToken = token
	return cfg
}

// Namespace creates a namespace.
func (e *Env) Namespace(t testing.TB, name string) {
	t.Helper()
	_, err := e.Client(t).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// ServiceAccountToken creates the service account if it is missing and
// returns a token for it (TokenRequest), valid for the audiences given (the
// API server's own when none).
func (e *Env) ServiceAccountToken(t testing.TB, ns, sa string, audiences ...string) string {
	t.Helper()
	ctx := context.Background()
	c := e.Client(t)
	_, err := c.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", ns, sa, err)
	}
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// InstallCRDs creates every CustomResourceDefinition in a YAML file and
// waits until the API server serves them.
func (e *Env) InstallCRDs(t testing.TB, path string) {
	t.Helper()
	c, err := apiextensions.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var names []string
	for _, doc := range readDocuments(t, path) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		if _, err := c.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: create CRD %s: %v", path, crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", name, err)
		}
	}
	e.mapper.Reset()
}

// Apply creates every object of a multi-document YAML file, of any kind the
// API server serves. Namespaced objects without a namespace go to
// "default".
func (e *Env) Apply(t testing.TB, path string) {
	t.Helper()
	if err := e.ApplyErr(path); err != nil {
		t.Fatal(err)
	}
}

// ApplyErr is Apply returning the first error, for tests that expect one.
func (e *Env) ApplyErr(path string) error {
	docs, err := documents(path)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	for i, doc := range docs {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return fmt.Errorf("%s#%d: %w", path, i+1, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := e.create(dyn, obj); err != nil {
			return fmt.Errorf("%s#%d: %s %s: %w", path, i+1, obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

func (e *Env) create(dyn dynamic.Interface, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		e.mapper.Reset()
		if m, err = e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return err
		}
	}
	var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		r = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = r.Create(context.Background(), obj, metav1.CreateOptions{FieldValidation: "Strict"})
	return err
}

// readDocuments splits a YAML file into its documents.
func readDocuments(t testing.TB, path string) [][]byte {
	t.Helper()
	docs, err := documents(path)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func documents(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}

// start runs a server process for the rest of the test, its output in log.
// The process is killed with the test, and with the test binary if that
// dies first.
func start(t testing.TB, name, log, bin string, args ...string) {
	out, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
}

// waitFor polls ready until it holds, or fails the test with the end of the
// server's log.
func waitFor(t testing.TB, name, log string, timeout time.Duration, ready func() bool) {
	deadline := time.Now().Add(timeout)
	for !ready() {
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(log)
			if len(data) > 4000 {
				data = data[len(data)-4000:]
			}
			t.Fatalf("%s not ready after %v; end of its log:\n%s", name, timeout, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serviceAccountKeys writes the RSA key pair the API server signs
// service-account tokens with.
func serviceAccountKeys(t testing.TB, dir string) (keyPath, pubPath string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	return keyPath, pubPath
}

func writeFile(t testing.TB, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shmOr returns /dev/shm when it exists (etcd fsyncs a lot), else dir.
func shmOr(dir string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return dir
}
