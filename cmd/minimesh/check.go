package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher/file"
)

// runCheck implements `minimesh check DIR`: it prints every problem in a
// directory of Istio YAML and fails if any object would be rejected.
func runCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	ns := fs.String("default-namespace", "default", "namespace of objects without metadata.namespace")
	suffix := fs.String("domain-suffix", "cluster.local", "cluster domain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("check: want exactly one directory")
	}
	w := file.New(file.Config{Dir: fs.Arg(0), DefaultNamespace: *ns, DomainSuffix: *suffix})
	snap, problems, err := w.Load()
	if err != nil {
		return err
	}
	failed := 0
	for _, p := range problems {
		var d mesh.Diagnostic
		if errors.As(p, &d) && d.Severity != mesh.SeverityError {
			fmt.Fprintln(stdout, severityWord(d.Severity)+":", p)
			continue
		}
		failed++
		fmt.Fprintln(stdout, "error:", p)
	}
	fmt.Fprintf(stdout, "%d services, %d workloads, %d virtual services, %d destination rules", len(snap.Services),
		len(snap.Workloads), len(snap.VirtualServices), len(snap.DestinationRules))
	if len(snap.Sidecars) > 0 {
		fmt.Fprintf(stdout, ", %d sidecars", len(snap.Sidecars))
	}
	fmt.Fprintf(stdout, "; %d errors\n", failed)
	if failed > 0 {
		return fmt.Errorf("check: %d errors", failed)
	}
	return nil
}

func severityWord(s mesh.Severity) string {
	switch s {
	case mesh.SeverityInfo:
		return "info"
	case mesh.SeverityWarning:
		return "warning"
	}
	return "error"
}
