package version

import "runtime/debug"

// commit is set at link time by the Makefile and the Dockerfile
// (-ldflags "-X github.com/dwnsync/dwnsync/internal/version.commit=..."): the image is built
// without the .git directory, and GOFLAGS=-buildvcs=false leaves no VCS stamp either.
var commit = ""

// Commit is the git commit the binary was built from: the one set at link time, else Go's VCS
// stamp (with "-dirty" when the tree had changes), else "unknown" (e.g. go test).
func Commit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return vcsCommit(info.Settings)
}

// vcsCommit is the short vcs.revision of the build settings, "unknown" without one.
func vcsCommit(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
