// Package shiptest holds the tests of what dwnsync ships besides Go code: the Helm chart
// (lint, render, schema, RBAC coverage, and acceptance of the rendered manifests by a real API
// server) and the container build (the Dockerfile's build line produces a static binary, with
// the same flags as the Makefile). It has no non-test code.
package shiptest
