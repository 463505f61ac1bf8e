// Package version holds the build version, set at link time by the Makefile and the Dockerfile.
package version

// Version is overridden with -ldflags "-X github.com/dwnsync/dwnsync/internal/version.Version=...".
var Version = "dev"
