// Command minimesh is an xDS control plane for Envoy sidecars and
// proxyless gRPC that speaks Istio's YAML.
//
//	minimesh serve --config-dir DIR       serve xDS from a directory of Istio YAML
//	minimesh demo                          watch a 90/10 canary shift, live, on loopback
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

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const usage = `minimesh: an xDS control plane for Envoy and proxyless gRPC, driven by Istio YAML.

Usage:
  minimesh serve --config-dir DIR [--xds-address 127.0.0.1:15010]   serve xDS from Istio YAML in DIR
  minimesh demo                                                     a live 90/10 canary on loopback
  minimesh bootstrap --node NAME.NS (--certs DIR | --insecure-xds) [--grpc]   print a proxy bootstrap
  minimesh certs issue --workload NAME.NAMESPACE --out DIR ...      write a workload's key and certificates
  minimesh check DIR                                                validate Istio YAML and exit
  minimesh proxy-status [NAME.NS] [--debug-address 127.0.0.1:15015] sync state of each connected proxy
  minimesh inject -f FILE [-o OUT]                                  add the Envoy sidecar to Kubernetes YAML
  minimesh init-iptables [--dry-run] ...                            install the sidecar's iptables redirect (init container)

Run "minimesh COMMAND -h" for a command's flags. serve --kubernetes and inject are
in a build with -tags kubernetes (the container image's); demo is not in one with -tags lean.
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
		return runDemo(ctx, args[1:], stdout, stderr)
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

// newLogger returns a console logger at the given level ("debug", "info",
// "warn", "error") writing to w.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
	return zap.New(core), nil
}
