// Package docker holds the files of the docker-compose example at the root
// of the repository: the mesh config minimesh serves (config/) and the Envoy
// bootstrap of each sidecar (envoy-*.yaml). It has no code; its tests check
// that docker-compose.yaml, the bootstrap files and the config agree, since
// nobody can run the example without Docker.
package docker
