//go:build kubernetes

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/minimesh/minimesh/bootstrap"
	"github.com/minimesh/minimesh/inject"
)

// runInject implements `minimesh inject`: it reads Kubernetes YAML, adds
// the Envoy sidecar and the iptables init container to every pod template
// in it, and writes the result, for `kubectl apply -f`.
func runInject(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: minimesh inject -f FILE|- [-o FILE] [--image IMAGE] [--proxy-image IMAGE] [--xds HOST:PORT] [--token-exchange-url URL]")
		fmt.Fprintln(fs.Output(), "Adds minimesh's Envoy sidecar to the Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs in FILE.")
		fmt.Fprintln(fs.Output(), "Other objects, and pods annotated sidecar.minimesh.io/inject: \"false\", are copied unchanged; injecting twice changes nothing.")
		fs.PrintDefaults()
	}
	in := fs.String("f", "", "the YAML `FILE` to read, - for standard input (required)")
	out := fs.String("o", "", "the `FILE` to write; standard output when empty")
	var c inject.Config
	fs.StringVar(&c.InitImage, "image", inject.DefaultInitImage, "minimesh's `IMAGE`, which runs the iptables init container")
	fs.StringVar(&c.ProxyImage, "proxy-image", inject.DefaultProxyImage, "Envoy's `IMAGE`")
	fs.StringVar(&c.XDSAddress, "xds", bootstrap.DefaultKubernetesXDSAddress, "`HOST:PORT` of minimesh's xDS Service, the name its certificate carries")
	fs.StringVar(&c.TokenExchangeURL, "token-exchange-url", bootstrap.DefaultTokenExchangeURL, "minimesh's token exchange `URL`, where Envoy trades its service-account token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("inject: unexpected argument %q", fs.Arg(0))
	}
	if *in == "" {
		return errors.New("inject: -f FILE is required (- reads standard input)")
	}
	input, err := readInput(*in, stdin)
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	injected, err := inject.InjectYAML(c, input)
	if err != nil {
		return fmt.Errorf("inject: %s: %w", *in, err)
	}
	if *out == "" {
		_, err = stdout.Write(injected)
		return err
	}
	if err := os.WriteFile(*out, injected, 0o644); err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	return nil
}

// readInput reads the named file, or stdin for "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}
