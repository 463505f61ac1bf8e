package shiptest

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerBuildLine returns the `go build` arguments of the Dockerfile's build stage.
func dockerBuildLine(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN go build (.+)$`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("Dockerfile has no `RUN go build` line")
	}
	if !regexp.MustCompile(`(?m)^ENV .*CGO_ENABLED=0`).Match(raw) {
		t.Fatal("Dockerfile must build with CGO_ENABLED=0 (static binary for a distroless image)")
	}
	if !regexp.MustCompile(`(?m)^USER 65532`).Match(raw) {
		t.Fatal("the final image must run as the non-root user 65532")
	}
	return m[1]
}

// TestDockerfileFlagsMatchMakefile keeps `make build` and the image building the same binary.
func TestDockerfileFlagsMatchMakefile(t *testing.T) {
	line := dockerBuildLine(t)
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GO_BUILD_FLAGS := (.+)$`).FindStringSubmatch(string(mk))
	if m == nil {
		t.Fatal("Makefile has no GO_BUILD_FLAGS")
	}
	makeFlags := strings.NewReplacer("$(VERSION)", "${VERSION}", "$(COMMIT)", "${COMMIT}").Replace(m[1])
	if !strings.HasPrefix(line, makeFlags+" ") {
		t.Fatalf("Dockerfile build flags drifted from the Makefile:\n Dockerfile: %s\n Makefile:   %s", line, makeFlags)
	}
}

// TestImageBuildIsStatic runs the Dockerfile's build line (no Docker engine here) and checks
// that the result is a static binary that reports the injected version and commit.
func TestImageBuildIsStatic(t *testing.T) {
	line := dockerBuildLine(t)
	out := filepath.Join(t.TempDir(), "dwnsync")
	line = strings.NewReplacer("${VERSION}", "v0.0.0-imagetest", "${COMMIT}", "c0ffee123456").Replace(line)
	line = strings.ReplaceAll(line, "/out/dwnsync", out)
	script := "go build " + line
	if msg, err := run(t, []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local"}, "bash", "-c", script); err != nil {
		t.Fatalf("image build failed: %v\n%s", err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary asks for a dynamic loader: it would not run on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary links shared libraries %v", libs)
	}
	got, err := run(t, nil, out, "version")
	if err != nil {
		t.Fatalf("dwnsync version: %v\n%s", err, got)
	}
	if !strings.Contains(got, "v0.0.0-imagetest commit c0ffee123456") {
		t.Fatalf("dwnsync version printed %q, want the injected version and commit", got)
	}
}
