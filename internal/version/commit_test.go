package version

import (
	"runtime/debug"
	"testing"
)

// The commit set at link time wins; without it, the VCS stamp, shortened, marked dirty.
func TestCommit(t *testing.T) {
	for _, tc := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, "unknown"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}, "0123456789ab"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}, "0123456789ab-dirty"},
	} {
		if got := vcsCommit(tc.settings); got != tc.want {
			t.Errorf("vcsCommit(%v) = %q, want %q", tc.settings, got, tc.want)
		}
	}
	defer func(c string) { commit = c }(commit)
	commit = "feedbeef"
	if got := Commit(); got != "feedbeef" {
		t.Errorf("Commit() with the link-time commit = %q", got)
	}
}
