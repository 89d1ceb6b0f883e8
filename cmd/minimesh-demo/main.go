// Command minimesh-demo shows minimesh at work, in one process on
// loopback, with nothing to install: a canary release shifted by editing a
// VirtualService's weights (90/10, 50/50, 0/100, and back), then mutual TLS
// from PERMISSIVE to STRICT, on real gRPC calls.
//
//	go run ./cmd/minimesh-demo [--phase 6s] [--rate 2000]
//
// The control plane is the same code as `minimesh serve` (package runner);
// the applications are gRPC servers and a client that take their routes,
// clusters, endpoints and listeners from it through gRPC's own xDS client.
//
// The demo is a program of its own so that the control plane's binary does
// not link that client: a Go process maps nearly all the code it links, and
// gRPC's xDS client with what it brings is about 5 MiB of every minimesh
// process (docs/performance.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // the usage was printed, as asked
		}
		fmt.Fprintln(os.Stderr, "minimesh-demo:", err)
		os.Exit(2)
	}
}
