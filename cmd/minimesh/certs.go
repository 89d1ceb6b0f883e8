package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minimesh/minimesh/bootstrap"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher/file"
)

const certsUsage = `usage: minimesh certs issue --workload NAME.NAMESPACE --config-dir DIR --ca-dir DIR --out DIR

Sub-commands:
  issue   write a workload's key, certificate chain and trust roots into a directory,
          for gRPC's file_watcher certificate provider and for xDS over mutual TLS

Run "minimesh certs issue -h" for its flags.
`

// runCerts implements `minimesh certs`: sub-commands that work with the CA
// directly, without a running control plane.
func runCerts(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("certs: missing sub-command\n" + certsUsage)
	}
	switch args[0] {
	case "issue":
		return runCertsIssue(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, certsUsage)
		return nil
	default:
		return fmt.Errorf("certs: unknown sub-command %q\n%s", args[0], certsUsage)
	}
}

// certsIssueFlags are the flags of `minimesh certs issue`.
type certsIssueFlags struct {
	workload         string // NAME.NAMESPACE, the node ID
	configDir        string
	caDir            string
	out              string
	proxyDir         string // out as the proxy sees it, for Envoy's SDS file
	trustDomain      string
	lifetime         time.Duration
	defaultNamespace string
}

// runCertsIssue implements `minimesh certs issue`: it finds the workload in
// the config directory, issues a certificate for its identity (its
// namespace and service account, as the config says) from the CA in
// --ca-dir, and writes key, chain and roots into --out. It prints where the
// files are and what the certificate says, never the key.
func runCertsIssue(args []string, stdout io.Writer) error {
	f, err := parseCertsIssueFlags(args)
	if err != nil {
		return err
	}
	w, err := findWorkload(f.configDir, f.defaultNamespace, f.workload)
	if err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	hadRoot, err := caExists(f.caDir)
	if err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	ca, err := certs.LoadOrCreate(certs.Options{Dir: f.caDir, TrustDomain: f.trustDomain, CertLifetime: f.lifetime})
	if err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	id := certs.Identity{TrustDomain: f.trustDomain, Namespace: w.Namespace, ServiceAccount: w.ServiceAccount}
	c, err := ca.Issue(id)
	if err != nil {
		return fmt.Errorf("certs issue: workload %s: %w", w.ID(), err)
	}
	if err := certs.WriteFiles(f.out, c, ca.TrustBundlePEM()); err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	if err := writeEnvoySDSFile(f); err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	return printIssued(stdout, f, w, c, ca, hadRoot)
}

// writeEnvoySDSFile writes the file-based SDS resources through which an
// Envoy bootstrap (`minimesh bootstrap --certs`) reads these files, so that
// running certs issue again renews Envoy's xDS certificate in place.
func writeEnvoySDSFile(f certsIssueFlags) error {
	dir := f.proxyDir
	if dir == "" {
		dir = f.out
	}
	data, err := bootstrap.EnvoySDSFile(dir)
	if err != nil {
		return err
	}
	path := filepath.Join(f.out, bootstrap.EnvoySDSFileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path) // atomic: Envoy never reads half a file
}

// parseCertsIssueFlags parses the command line of `minimesh certs issue`.
func parseCertsIssueFlags(args []string) (certsIssueFlags, error) {
	var f certsIssueFlags
	fs := flag.NewFlagSet("certs issue", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: minimesh certs issue --workload NAME.NAMESPACE --config-dir DIR --ca-dir DIR --out DIR [--trust-domain TD] [--lifetime 24h]")
		fmt.Fprintln(fs.Output(), "Writes key.pem (0600), cert-chain.pem and root-cert.pem into --out; run it again to renew.")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.workload, "workload", "", "the workload: `NAME.NAMESPACE` of its WorkloadEntry, the node ID its proxy uses (required)")
	fs.StringVar(&f.configDir, "config-dir", "", "`DIR` of Istio YAML, as given to minimesh serve: the workload's namespace and service account come from there (required)")
	fs.StringVar(&f.caDir, "ca-dir", defaultCADir(), "the CA's `DIR`, the one minimesh serve --ca-dir uses; a new root is generated there if it holds none")
	fs.StringVar(&f.proxyDir, "proxy-dir", "", "the `DIR` --out is mounted at in the proxy's file system, for Envoy's "+bootstrap.EnvoySDSFileName+" (default: --out)")
	fs.StringVar(&f.out, "out", "", "`DIR` to write the files into (created 0700 if missing; existing files are replaced atomically) (required)")
	fs.StringVar(&f.trustDomain, "trust-domain", certs.DefaultTrustDomain, "trust domain of the SPIFFE ID; must match minimesh serve --trust-domain")
	fs.DurationVar(&f.lifetime, "lifetime", certs.DefaultCertLifetime, "how long the certificate is valid (at most as long as the CA)")
	fs.StringVar(&f.defaultNamespace, "default-namespace", "default", "namespace of objects in --config-dir without metadata.namespace, as for minimesh serve")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("certs issue: unexpected argument %q", fs.Arg(0))
	}
	for _, req := range []struct{ name, value string }{
		{"workload", f.workload}, {"config-dir", f.configDir}, {"out", f.out},
	} {
		if req.value == "" {
			return f, fmt.Errorf("certs issue: --%s is required", req.name)
		}
	}
	if f.lifetime <= 0 {
		return f, fmt.Errorf("certs issue: --lifetime %s: want a positive duration", f.lifetime)
	}
	if filepath.Clean(f.out) == filepath.Clean(f.caDir) {
		// Both use root-cert.pem; the CA's key must not sit next to a
		// workload's files.
		return f, errors.New("certs issue: --out must not be the CA directory")
	}
	return f, nil
}

// findWorkload loads the config directory and returns the workload whose
// node ID is id. When there is none, the error names close matches and the
// errors that may have left it out.
func findWorkload(dir, defaultNamespace, id string) (*mesh.Workload, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("config dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("config dir %s is not a directory", dir)
	}
	snap, problems, err := file.New(file.Config{Dir: dir, DefaultNamespace: defaultNamespace}).Load()
	if err != nil {
		return nil, fmt.Errorf("config dir %s: %w", dir, err)
	}
	var ids []string
	for _, w := range snap.Workloads {
		if w.ID() == id {
			return w, nil
		}
		ids = append(ids, w.ID())
	}

	var b strings.Builder
	fmt.Fprintf(&b, "no WorkloadEntry %q in %s", id, dir)
	if !strings.Contains(id, ".") {
		fmt.Fprintf(&b, " (want NAME.NAMESPACE, e.g. %s.%s)", id, defaultNamespace)
	}
	switch close := closeMatches(id, ids); {
	case len(ids) == 0:
		b.WriteString("; it holds no valid WorkloadEntry")
	case len(close) > 0:
		fmt.Fprintf(&b, "; did you mean %s?", strings.Join(close, ", "))
	case len(ids) <= 10:
		fmt.Fprintf(&b, "; workloads there: %s", strings.Join(ids, ", "))
	default:
		fmt.Fprintf(&b, "; %d workloads there, none with a similar name", len(ids))
	}
	if rejected := rejections(problems, id); len(rejected) > 0 {
		b.WriteString("\nthe WorkloadEntry was rejected:")
		for _, r := range rejected {
			b.WriteString("\n  " + r)
		}
	} else if errs := countErrors(problems); errs > 0 {
		fmt.Fprintf(&b, "\n(%d errors in %s left objects out; `minimesh check %s` lists them)", errs, dir, dir)
	}
	return nil, errors.New(b.String())
}

// rejections returns the errors about the WorkloadEntry that id names.
func rejections(problems []error, id string) []string {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return nil
	}
	object := "WorkloadEntry " + id[i+1:] + "/" + id[:i]
	var out []string
	for _, p := range problems {
		var d mesh.Diagnostic
		if errors.As(p, &d) && d.Severity == mesh.SeverityError && d.Object == object {
			out = append(out, d.Error())
		}
	}
	return out
}

// countErrors counts the problems that are errors (not warnings).
func countErrors(problems []error) int {
	n := 0
	for _, p := range problems {
		var d mesh.Diagnostic
		if !errors.As(p, &d) || d.Severity == mesh.SeverityError {
			n++
		}
	}
	return n
}

// closeMatches returns the ids, at most five, that look like a misspelling
// of want: a small edit distance, or the same name in another namespace.
func closeMatches(want string, ids []string) []string {
	type match struct {
		id   string
		dist int
	}
	name := want
	if i := strings.LastIndexByte(want, '.'); i >= 0 {
		name = want[:i]
	}
	limit := max(2, len(want)/4)
	var matches []match
	for _, id := range ids {
		d := mesh.EditDistance(want, id)
		sameName := strings.HasPrefix(id, name+".") && !strings.Contains(id[len(name)+1:], ".")
		if d <= limit || sameName {
			matches = append(matches, match{id, d})
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int { return a.dist - b.dist })
	var out []string
	for _, m := range matches[:min(len(matches), 5)] {
		out = append(out, m.id)
	}
	return out
}

// caExists reports whether dir already holds a CA (generated or supplied),
// so that the output can say when this run created one.
func caExists(dir string) (bool, error) {
	for _, name := range []string{certs.RootCertFile, certs.CACertFile} {
		_, err := os.Stat(filepath.Join(dir, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// printIssued says what was written and how to use it. It never prints the
// key, only where it is.
func printIssued(out io.Writer, f certsIssueFlags, w *mesh.Workload, c *certs.Cert, ca *certs.CA, hadRoot bool) error {
	source := w.Source.Source
	if source == "" {
		source = "?"
	}
	path := func(name string) string { return filepath.Join(f.out, name) }
	var b strings.Builder
	fmt.Fprintf(&b, "Issued %s\n", c.Identity.SPIFFEID())
	fmt.Fprintf(&b, "  for workload  %s (WorkloadEntry %s/%s in %s, service account %s)\n", w.ID(), w.Namespace, w.Name, source, w.ServiceAccount)
	fmt.Fprintf(&b, "  serial        %x\n", c.Leaf.SerialNumber)
	fmt.Fprintf(&b, "  valid until   %s (%s from now)\n", c.NotAfter.UTC().Format(time.RFC3339), time.Until(c.NotAfter).Round(time.Minute))
	if c.NotAfter.Before(time.Now().Add(f.lifetime - time.Minute)) {
		fmt.Fprintf(&b, "                shorter than --lifetime %s: the CA certificate expires then\n", f.lifetime)
	}
	fmt.Fprintf(&b, "Wrote\n")
	fmt.Fprintf(&b, "  %-40s private key (mode 0600)\n", path(certs.KeyFileName))
	fmt.Fprintf(&b, "  %-40s certificate chain\n", path(certs.ChainFileName))
	fmt.Fprintf(&b, "  %-40s trust roots (%d)\n", path(certs.RootsFileName), len(ca.TrustBundle()))
	if hadRoot {
		fmt.Fprintf(&b, "CA: %s\n", f.caDir)
	} else {
		fmt.Fprintf(&b, "CA: generated a new root in %s; `minimesh serve` must use this --ca-dir too\n", f.caDir)
	}
	fmt.Fprintf(&b, "Next: minimesh bootstrap --node %s --certs %s [--grpc]\n", w.ID(), f.out)
	fmt.Fprintf(&b, "Run this command again before the certificate expires: gRPC re-reads the files every 10s, Envoy only when it starts.\n")
	_, err := io.WriteString(out, b.String())
	return err
}
