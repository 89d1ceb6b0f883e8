// Command minimesh is an xDS control plane for Envoy sidecars and
// proxyless gRPC that speaks Istio's YAML.
//
//	minimesh serve --config-dir DIR       serve xDS from a directory of Istio YAML
//	minimesh bootstrap --node NAME.NS      print an Envoy (or --grpc) bootstrap
//	minimesh check DIR                     validate a directory of Istio YAML
//	minimesh proxy-status                  the sync state of every connected proxy
//	minimesh inject -f FILE                add the Envoy sidecar to Kubernetes YAML
//	minimesh init-iptables                 install the sidecar's iptables redirect
//
// This package is wiring only: flags, the logger, starting the pieces and
// stopping them cleanly on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `minimesh: an xDS control plane for Envoy and proxyless gRPC, driven by Istio YAML.

Usage:
  minimesh serve --config-dir DIR [--xds-address 127.0.0.1:15010]   serve xDS from Istio YAML in DIR
  minimesh bootstrap --node NAME.NS (--certs DIR | --insecure-xds) [--grpc]   print a proxy bootstrap
  minimesh certs issue --workload NAME.NAMESPACE --out DIR ...      write a workload's key and certificates
  minimesh check DIR                                                validate Istio YAML and exit
  minimesh proxy-status [NAME.NS] [--debug-address 127.0.0.1:15015] sync state of each connected proxy
  minimesh inject -f FILE [-o OUT]                                  add the Envoy sidecar to Kubernetes YAML
  minimesh init-iptables [--dry-run] ...                            install the sidecar's iptables redirect (init container)

Run "minimesh COMMAND -h" for a command's flags. serve --kubernetes and inject are
in a build with -tags kubernetes (the container image's). The demo is its own program:
go run ./cmd/minimesh-demo
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // the usage was printed, as asked
		}
		fmt.Fprintln(os.Stderr, "minimesh:", err)
		os.Exit(2)
	}
}

// run dispatches a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "demo":
		return errDemoMoved
	case "bootstrap":
		return runBootstrap(args[1:], stdout)
	case "certs":
		return runCerts(args[1:], stdout)
	case "check":
		return runCheck(args[1:], stdout)
	case "proxy-status":
		return runProxyStatus(ctx, args[1:], stdout)
	case "inject":
		return runInject(args[1:], os.Stdin, stdout)
	case "init-iptables":
		return runInitIPTables(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// errDemoMoved answers `minimesh demo`, which is a program of its own: its
// gRPC xDS client would cost every control-plane process its pages.
var errDemoMoved = errors.New("the demo is its own program: go run ./cmd/minimesh-demo " +
	"(or go install github.com/minimesh/minimesh/cmd/minimesh-demo@latest), so that this binary, the control plane, does not link gRPC's xDS client")
