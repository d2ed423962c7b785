package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
)

// repoRoot is the repository root, relative to this package; the Docker
// build context.
const repoRoot = "../.."

// dockerfile is the parsed Dockerfile: its stages and the commands of each.
type dockerfile struct {
	raw    []byte
	stages []instructions.Stage
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile parser warning: %s %s", w.Short, bytes.Join(w.Detail, []byte(" ")))
	}
	stages, _, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		t.Fatalf("parse Dockerfile instructions: %v", err)
	}
	return &dockerfile{raw: raw, stages: stages}
}

// stage returns the named stage, or the last (the image) for "".
func (d *dockerfile) stage(t *testing.T, name string) instructions.Stage {
	t.Helper()
	if name == "" {
		return d.stages[len(d.stages)-1]
	}
	for _, s := range d.stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Dockerfile has no stage %q", name)
	return instructions.Stage{}
}

// commands returns the stage's commands of type T, in order.
func commands[T any](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if x, ok := c.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// imageEnv is the ENV of a stage as a map (later values win).
func imageEnv(s instructions.Stage) map[string]string {
	env := map[string]string{}
	for _, c := range commands[*instructions.EnvCommand](s) {
		for _, kv := range c.Env {
			env[kv.Key] = kv.Value
		}
	}
	return env
}

// offlineResolver answers BuildKit's base-image lookups without a registry:
// the lint needs an image config for each FROM, and the checks it runs do
// not depend on what the config holds beyond the platform and PATH.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	return ref, digest.FromBytes(cfg), cfg, err
}

// lintDockerfile runs the checks of `docker build --check` (BuildKit's
// Dockerfile frontend, all rules, experimental ones included) with base
// images resolved offline, and returns one line per finding.
func lintDockerfile(t *testing.T, raw []byte) []string {
	t.Helper()
	sm := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", raw)
	sm.Definition = &llb.Definition{} // the lint result records it; there is no build graph
	opt := dockerfile2llb.ConvertOpt{MetaResolver: offlineResolver{}, SourceMap: sm}
	opt.LinterConfig = &linter.Config{ExperimentalAll: true}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), raw, opt)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	var out []string
	if res.Error != nil {
		out = append(out, "build error: "+res.Error.Message)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		out = append(out, fmt.Sprintf("Dockerfile:%d: %s: %s (%s)", line, w.RuleName, w.Detail, w.URL))
	}
	return out
}

// TestDockerfileLint fails on any finding of the BuildKit linter.
func TestDockerfileLint(t *testing.T) {
	for _, f := range lintDockerfile(t, parseDockerfile(t).raw) {
		t.Error(f)
	}
}

// TestDockerfileLinterWorksOffline proves the linter above is not silently
// a no-op: a Dockerfile with known faults yields those findings.
func TestDockerfileLinterWorksOffline(t *testing.T) {
	bad := []byte("FROM golang:1.26 as build\nENV FOO=$UNDEFINED_THING\nWORKDIR relative\n" +
		"FROM scratch\nCOPY --from=build /x /x\nENTRYPOINT /x\n")
	got := strings.Join(lintDockerfile(t, bad), "\n")
	for _, rule := range []string{"FromAsCasing", "UndefinedVar", "WorkdirRelativePath", "JSONArgsRecommended"} {
		if !strings.Contains(got, rule) {
			t.Errorf("linter did not report %s; findings:\n%s", rule, got)
		}
	}
}

// TestDockerfilePolicy asserts what the image promises operators.
func TestDockerfilePolicy(t *testing.T) {
	d := parseDockerfile(t)
	if len(d.stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build, image)", len(d.stages))
	}

	// The builder's Go is the minor version go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if b := d.stage(t, "build").BaseName; b != "golang:"+string(m[1]) {
		t.Errorf("build stage FROM %s, want golang:%s to match go.mod", b, m[1])
	}

	img := d.stage(t, "")
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian\d+(:nonroot)?$`).MatchString(img.BaseName) {
		t.Errorf("image FROM %s, want distroless static", img.BaseName)
	}
	// The server never serves as root: the image either runs as a non-root USER, or
	// starts as root only to hand the data folder to FLUXIONDB_RUN_AS, a non-root
	// uid:gid, and switch to it (TestImageRunsSeedCommand checks that it does).
	users := commands[*instructions.UserCommand](img)
	if len(users) == 0 {
		t.Errorf("image sets no USER")
	} else if u := users[len(users)-1].User; u == "0" || u == "root" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		if runAs := imageEnv(img)["FLUXIONDB_RUN_AS"]; !regexp.MustCompile(`^[1-9]\d*:[1-9]\d*$`).MatchString(runAs) {
			t.Errorf("image starts as %q with FLUXIONDB_RUN_AS=%q, want a non-root uid:gid to switch to", u, runAs)
		}
	}
	if w := commands[*instructions.WorkdirCommand](img); len(w) == 0 || w[len(w)-1].Path != "/app" {
		t.Errorf("image WORKDIR %v, want /app", w)
	}
	var volumes, ports []string
	for _, v := range commands[*instructions.VolumeCommand](img) {
		volumes = append(volumes, v.Volumes...)
	}
	for _, p := range commands[*instructions.ExposeCommand](img) {
		ports = append(ports, p.Ports...)
	}
	if !containsString(volumes, "/app/data") {
		t.Errorf("image VOLUME %v lacks /app/data", volumes)
	}
	if !containsString(ports, "8080") {
		t.Errorf("image EXPOSE %v lacks 8080", ports)
	}

	// Exec form, so the binary is PID 1's child of --init (or PID 1) and
	// receives SIGTERM directly: no shell in between (there is none).
	ep := commands[*instructions.EntrypointCommand](img)
	if len(ep) != 1 || ep[0].PrependShell || strings.Join(ep[0].CmdLine, " ") != "/app/fluxiondb" {
		t.Fatalf("ENTRYPOINT %+v, want exec form [\"/app/fluxiondb\"]", ep)
	}
	if cmd := commands[*instructions.CmdCommand](img); len(cmd) != 0 {
		t.Errorf("image has CMD %v: the seed's arguments must replace nothing", cmd[0].CmdLine)
	}
	hc := commands[*instructions.HealthCheckCommand](img)
	if len(hc) != 1 || strings.Join(hc[0].Health.Test, " ") != "CMD /app/fluxiondb healthcheck" {
		t.Fatalf("HEALTHCHECK %+v, want exec form [\"/app/fluxiondb\", \"healthcheck\"]", hc)
	}
	if to := hc[0].Health.Timeout; to <= 0 {
		t.Errorf("HEALTHCHECK has no timeout")
	}

	// The binary comes from the build stage; the data directory is owned by
	// the runtime user so new volumes are writable.
	copies := map[string]*instructions.CopyCommand{}
	for _, c := range commands[*instructions.CopyCommand](img) {
		copies[c.DestPath] = c
	}
	if c := copies["/app/fluxiondb"]; c == nil || c.From != "build" || !containsString(c.SourcePaths, "/out/fluxiondb") {
		t.Errorf("image does not COPY --from=build /out/fluxiondb /app/fluxiondb")
	}
	runtimeUser := users[len(users)-1].User
	if runAs := imageEnv(img)["FLUXIONDB_RUN_AS"]; runAs != "" {
		runtimeUser = runAs
	}
	if c := copies["/app/data"]; c == nil || c.Chown != runtimeUser {
		t.Errorf("/app/data is not created owned by the runtime user %q", runtimeUser)
	}
	if env := imageEnv(img); env["FLUXIONDB_HOST"] != "0.0.0.0" {
		t.Errorf("image ENV FLUXIONDB_HOST = %q, want 0.0.0.0 (reachable through -p)", env["FLUXIONDB_HOST"])
	}
	if env := imageEnv(d.stage(t, "build")); env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage CGO_ENABLED = %q, want 0 (static binary)", env["CGO_ENABLED"])
	}
}
