//go:build lean

package main

import (
	"context"
	"errors"
	"io"
)

// A lean build (go build -tags lean) is the control plane for files alone:
// serve, bootstrap, certs, check, proxy-status and init-iptables. The demo
// (with its simulated applications and Envoys, and gRPC's xDS client) is
// left out, with everything it links, and so is Kubernetes mode, even with
// -tags kubernetes.
var errNotInLean = errors.New("not in this build: minimesh was built with -tags lean (the control plane for files alone); build it without that tag for the demo")

func runDemo(context.Context, []string, io.Writer, io.Writer) error { return errNotInLean }

// kubernetesBuildHint says how to get Kubernetes mode from a lean build,
// which has none even with -tags kubernetes.
const kubernetesBuildHint = "it was built with -tags lean, the control plane for files alone; " +
	"build it without -tags lean and with -tags kubernetes"
