//go:build lean

package main

import (
	"context"
	"errors"
	"io"
)

// A lean build (go build -tags lean) is the control plane for files alone:
// serve, bootstrap, certs, check, proxy-status and init-iptables. The demo
// (with its simulated applications and Envoys) and the Kubernetes injector
// are left out, with everything they link.
var errNotInLean = errors.New("not in this build: minimesh was built with -tags lean (the control plane for files alone); build it without that tag for demo and inject")

func runDemo(context.Context, []string, io.Writer, io.Writer) error { return errNotInLean }

func runInject([]string, io.Reader, io.Writer) error { return errNotInLean }
