package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// certsCanaryDir is the canary example: WorkloadEntries my-app-v1 and my-app-v2
// in namespace default, service account my-app.
const certsCanaryDir = "../../examples/canary"

// certsIssue runs `minimesh certs issue` with args after the given ones.
func certsIssue(t *testing.T, workload, configDir, caDir, out string, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	all := append([]string{"issue", "--workload", workload, "--config-dir", configDir, "--ca-dir", caDir, "--out", out}, args...)
	err := runCerts(all, &stdout)
	return stdout.String(), err
}

func TestCertsIssue(t *testing.T) {
	tmp := t.TempDir()
	caDir, out := filepath.Join(tmp, "ca"), filepath.Join(tmp, "certs")
	stdout, err := certsIssue(t, "my-app-v1.default", certsCanaryDir, caDir, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", stdout)

	for name, perm := range map[string]os.FileMode{"key.pem": 0o600, "cert-chain.pem": 0o644, "root-cert.pem": 0o644} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %#o, want %#o", name, fi.Mode().Perm(), perm)
		}
	}

	// Envoy's file-based SDS file names the files just written.
	sds, err := os.ReadFile(filepath.Join(out, "envoy-sds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"key.pem", "cert-chain.pem", "root-cert.pem"} {
		if !strings.Contains(string(sds), filepath.Join(out, name)) {
			t.Errorf("envoy-sds.yaml does not name %s:\n%s", filepath.Join(out, name), sds)
		}
	}

	chain := certsReadPEM(t, filepath.Join(out, "cert-chain.pem"))
	roots := x509.NewCertPool()
	for _, r := range certsReadPEM(t, filepath.Join(out, "root-cert.pem")) {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("chain does not verify against root-cert.pem for usage %v: %v", usage, err)
		}
	}
	var sans []string
	for _, u := range leaf.URIs {
		sans = append(sans, u.String())
	}
	if diff := cmp.Diff([]string{"spiffe://cluster.local/ns/default/sa/my-app"}, sans); diff != "" {
		t.Errorf("URI SANs (-want +got):\n%s", diff)
	}
	if len(leaf.DNSNames) > 0 || len(leaf.IPAddresses) > 0 {
		t.Errorf("workload certificate has DNS %v / IP %v SANs; want the SPIFFE ID only", leaf.DNSNames, leaf.IPAddresses)
	}
	if life := leaf.NotAfter.Sub(time.Now()); life < 23*time.Hour || life > 25*time.Hour {
		t.Errorf("certificate valid for %s more, want about 24h", life)
	}

	key, err := os.ReadFile(filepath.Join(out, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(key)
	if block == nil {
		t.Fatal("key.pem holds no PEM block")
	}
	if strings.Contains(stdout, "PRIVATE KEY") || strings.Contains(stdout, string(key)) {
		t.Error("the output shows the private key")
	}
	for _, want := range []string{
		"spiffe://cluster.local/ns/default/sa/my-app",
		filepath.Join(out, "key.pem"), filepath.Join(out, "cert-chain.pem"), filepath.Join(out, "root-cert.pem"),
		leaf.NotAfter.UTC().Format(time.RFC3339),
		"generated a new root in " + caDir,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the output does not mention %q", want)
		}
	}
}

// TestCertsIssueReusesTheCA checks that a second run signs with the same
// root, so certificates issued at different times trust each other.
func TestCertsIssueReusesTheCA(t *testing.T) {
	tmp := t.TempDir()
	caDir := filepath.Join(tmp, "ca")
	if _, err := certsIssue(t, "my-app-v1.default", certsCanaryDir, caDir, filepath.Join(tmp, "v1")); err != nil {
		t.Fatal(err)
	}
	stdout, err := certsIssue(t, "my-app-v2.default", certsCanaryDir, caDir, filepath.Join(tmp, "v2"), "--trust-domain", "cluster.local", "--lifetime", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "generated a new root") {
		t.Errorf("second run generated a new root:\n%s", stdout)
	}
	r1, _ := os.ReadFile(filepath.Join(tmp, "v1", "root-cert.pem"))
	r2, _ := os.ReadFile(filepath.Join(tmp, "v2", "root-cert.pem"))
	if !bytes.Equal(r1, r2) {
		t.Error("the two runs wrote different roots")
	}
	leaf := certsReadPEM(t, filepath.Join(tmp, "v2", "cert-chain.pem"))[0]
	if life := time.Until(leaf.NotAfter); life > time.Hour+time.Minute {
		t.Errorf("--lifetime 1h gave a certificate valid for %s more", life)
	}
}

func TestCertsIssueTrustDomain(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "certs")
	if _, err := certsIssue(t, "my-app-v2.default", certsCanaryDir, filepath.Join(tmp, "ca"), out, "--trust-domain", "example.org"); err != nil {
		t.Fatal(err)
	}
	leaf := certsReadPEM(t, filepath.Join(out, "cert-chain.pem"))[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://example.org/ns/default/sa/my-app" {
		t.Errorf("URI SANs = %v, want spiffe://example.org/ns/default/sa/my-app", leaf.URIs)
	}
}

// TestCertsIssueNamespaceAndServiceAccount checks that the identity comes
// from the WorkloadEntry: its namespace (or --default-namespace) and its
// service account ("default" when it names none).
func TestCertsIssueNamespaceAndServiceAccount(t *testing.T) {
	config := t.TempDir()
	certsWriteFile(t, filepath.Join(config, "w.yaml"), `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: api
  namespace: shop
spec:
  address: 10.0.0.1
  serviceAccount: api-sa
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: worker
spec:
  address: 10.0.0.2
`)
	tests := []struct {
		workload string
		args     []string
		want     string
	}{
		{"api.shop", nil, "spiffe://cluster.local/ns/shop/sa/api-sa"},
		{"worker.jobs", []string{"--default-namespace", "jobs"}, "spiffe://cluster.local/ns/jobs/sa/default"},
	}
	for _, tc := range tests {
		t.Run(tc.workload, func(t *testing.T) {
			tmp := t.TempDir()
			out := filepath.Join(tmp, "certs")
			if _, err := certsIssue(t, tc.workload, config, filepath.Join(tmp, "ca"), out, tc.args...); err != nil {
				t.Fatal(err)
			}
			leaf := certsReadPEM(t, filepath.Join(out, "cert-chain.pem"))[0]
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != tc.want {
				t.Errorf("URI SANs = %v, want %s", leaf.URIs, tc.want)
			}
		})
	}
}

func TestCertsIssueErrors(t *testing.T) {
	rejected := t.TempDir()
	certsWriteFile(t, filepath.Join(rejected, "w.yaml"), `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: broken
  namespace: default
spec:
  address: "not an address"
`)
	empty := t.TempDir()
	tmp := t.TempDir()
	caDir, out := filepath.Join(tmp, "ca"), filepath.Join(tmp, "out")
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"unknown workload", []string{"issue", "--workload", "my-app-v3.default", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out},
			[]string{`no WorkloadEntry "my-app-v3.default"`, "did you mean my-app-v1.default, my-app-v2.default?"}},
		{"wrong namespace", []string{"issue", "--workload", "my-app-v1.prod", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out},
			[]string{`no WorkloadEntry "my-app-v1.prod"`, "did you mean my-app-v1.default"}},
		{"no namespace", []string{"issue", "--workload", "my-app-v1", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out},
			[]string{"want NAME.NAMESPACE", "did you mean my-app-v1.default"}},
		{"nothing close", []string{"issue", "--workload", "billing.payments", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out},
			[]string{`no WorkloadEntry "billing.payments"`, "workloads there: my-app-v1.default, my-app-v2.default"}},
		{"no workloads", []string{"issue", "--workload", "a.b", "--config-dir", empty, "--ca-dir", caDir, "--out", out},
			[]string{"it holds no valid WorkloadEntry"}},
		{"rejected workload", []string{"issue", "--workload", "broken.default", "--config-dir", rejected, "--ca-dir", caDir, "--out", out},
			[]string{`no WorkloadEntry "broken.default"`, "the WorkloadEntry was rejected", "spec.address"}},
		{"missing config dir", []string{"issue", "--workload", "a.b", "--config-dir", filepath.Join(tmp, "nope"), "--ca-dir", caDir, "--out", out},
			[]string{"config dir"}},
		{"no workload flag", []string{"issue", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out}, []string{"--workload is required"}},
		{"no config dir", []string{"issue", "--workload", "a.b", "--ca-dir", caDir, "--out", out}, []string{"--config-dir is required"}},
		{"no out", []string{"issue", "--workload", "a.b", "--config-dir", certsCanaryDir, "--ca-dir", caDir}, []string{"--out is required"}},
		{"out is the CA dir", []string{"issue", "--workload", "my-app-v1.default", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", caDir + "/"},
			[]string{"--out must not be the CA directory"}},
		{"bad lifetime", []string{"issue", "--workload", "a.b", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out, "--lifetime", "-1h"},
			[]string{"--lifetime -1h0m0s: want a positive duration"}},
		{"bad trust domain", []string{"issue", "--workload", "my-app-v1.default", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out, "--trust-domain", "Cluster.Local"},
			[]string{`trust domain "Cluster.Local"`}},
		{"extra argument", []string{"issue", "--workload", "a.b", "--config-dir", certsCanaryDir, "--ca-dir", caDir, "--out", out, "x"}, []string{`unexpected argument "x"`}},
		{"no sub-command", nil, []string{"missing sub-command"}},
		{"unknown sub-command", []string{"rotate"}, []string{`unknown sub-command "rotate"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := runCerts(tc.args, &stdout)
			if err == nil {
				t.Fatalf("runCerts(%q) succeeded:\n%s", tc.args, stdout.String())
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("printed output despite the error:\n%s", stdout.String())
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was created despite the error", out)
			}
		})
	}
}

func TestCloseMatches(t *testing.T) {
	ids := []string{"my-app-v1.default", "my-app-v2.default", "client.default", "my-app-v1.prod", "api.v2.shop"}
	tests := []struct {
		want string
		got  []string
	}{
		{"my-app-v1.default", []string{"my-app-v1.default", "my-app-v2.default", "my-app-v1.prod"}},
		{"my-app-v1.staging", []string{"my-app-v1.default", "my-app-v1.prod"}},
		{"clinet.default", []string{"client.default"}},
		{"api.v2.default", []string{"api.v2.shop"}},
		{"billing.payments", nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.got, closeMatches(tc.want, ids)); diff != "" {
			t.Errorf("closeMatches(%q) (-want +got):\n%s", tc.want, diff)
		}
	}
}

func certsReadPEM(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no certificate", path)
	}
	return out
}

func certsWriteFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
