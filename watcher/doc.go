// Package watcher holds what both sources of the mesh share: watcher/file
// (a directory of YAML) and watcher/kube (a Kubernetes cluster) debounce
// their change events the same way and log each problem once.
package watcher
