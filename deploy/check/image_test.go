package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// imageVersion is passed as --build-arg VERSION; it must come out of the
// binary, proving the -X flag names a variable that exists.
const imageVersion = "v0.0.0-deploycheck.1"

// The image binary is built once per test run, by replaying the Dockerfile.
var image struct {
	once sync.Once
	dir  string // temporary directory, removed by TestMain
	bin  string // the built /out/fluxiondb
	log  string // output of the build
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if image.dir != "" {
		os.RemoveAll(image.dir)
	}
	os.Exit(code)
}

// imageBinary builds the server as the Dockerfile's build stage does and
// returns the binary's path.
func imageBinary(t *testing.T) string {
	t.Helper()
	image.once.Do(func() {
		image.dir, image.err = os.MkdirTemp("", "fluxiondb-image-")
		if image.err == nil {
			image.bin, image.log, image.err = replayBuildStage(parseDockerfile(t), image.dir)
		}
	})
	if image.err != nil {
		t.Fatalf("build as the Dockerfile does: %v\n%s", image.err, image.log)
	}
	return image.bin
}

// replayBuildStage runs the Dockerfile's build stage on this machine:
// a build context assembled through .dockerignore stands for the COPY
// steps, ARG and ENV become the environment, and every RUN line runs
// verbatim with sh -c, with /out/ moved into dir.
func replayBuildStage(d *dockerfile, dir string) (bin, log string, err error) {
	ctxDir := filepath.Join(dir, "context")
	outDir := filepath.Join(dir, "out")
	if err := buildContext(repoRoot, ctxDir); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", "", err
	}
	var st instructions.Stage
	for _, s := range d.stages {
		if s.Name == "build" {
			st = s
		}
	}
	if st.Name == "" {
		return "", "", errors.New("no build stage")
	}

	// The golang image sets no GOFLAGS and pins its own toolchain; the
	// host's module and build caches are kept (the Dockerfile mounts caches
	// there too).
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "GOFLAGS", k == "GOOS", k == "GOARCH", k == "GOEXPERIMENT", strings.HasPrefix(k, "CGO_"):
		default:
			env[k] = v
		}
	}
	env["GOTOOLCHAIN"] = "local"
	buildArgs := map[string]string{"VERSION": imageVersion}

	var out bytes.Buffer
	ranBuild := false
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			// The context directory stands for WORKDIR.
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				if src != "." && src != "go.mod" && src != "go.sum" {
					return "", out.String(), fmt.Errorf("build stage copies %q: teach replayBuildStage about it", src)
				}
			}
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				v, ok := buildArgs[a.Key]
				if !ok && a.Value != nil {
					v = *a.Value
				}
				env[a.Key] = v
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = os.Expand(kv.Value, func(k string) string { return env[k] })
			}
		case *instructions.RunCommand:
			if !c.PrependShell {
				return "", out.String(), errors.New("exec-form RUN is not replayed")
			}
			line := strings.Join(c.CmdLine, " ")
			if strings.Contains(line, "go build") {
				ranBuild = true
				if !strings.Contains(line, "-o /out/fluxiondb ") {
					return "", out.String(), fmt.Errorf("go build does not write /out/fluxiondb: %s", line)
				}
			}
			line = strings.ReplaceAll(line, "/out/", outDir+"/")
			fmt.Fprintf(&out, "$ %s\n", line)
			cmd := exec.Command("/bin/sh", "-c", line)
			cmd.Dir = ctxDir
			cmd.Stdout, cmd.Stderr = &out, &out
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if err := cmd.Run(); err != nil {
				return "", out.String(), fmt.Errorf("RUN %s: %w", line, err)
			}
		default:
			return "", out.String(), fmt.Errorf("build stage instruction %s is not replayed", c.Name())
		}
	}
	if !ranBuild {
		return "", out.String(), errors.New("build stage has no go build")
	}
	return filepath.Join(outDir, "fluxiondb"), out.String(), nil
}

// buildContext copies the files of root that Docker would send as the
// build context — all but those .dockerignore excludes — into dst.
func buildContext(root, dst string) error {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("compile .dockerignore: %w", err)
	}
	return filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if excluded {
			if de.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch {
		case de.IsDir():
			return os.MkdirAll(target, 0o755)
		case de.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case de.Type().IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return copyFile(p, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestDockerContext checks .dockerignore keeps what the build needs and
// drops what it must not carry (VCS data, local data, SDKs, the chart).
func TestDockerContext(t *testing.T) {
	dst := t.TempDir()
	if err := buildContext(repoRoot, dst); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/fluxiondb", "internal"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("build context lacks %s: %v", p, err)
		}
	}
	for _, p := range []string{".git", "clients", "deploy", "tmp_data", "Dockerfile", "docs"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err == nil {
			t.Errorf("build context carries %s", p)
		}
	}
}

// TestImageBinary builds the server exactly as the Dockerfile does and
// checks the properties the image depends on.
func TestImageBinary(t *testing.T) {
	bin := imageBinary(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary is dynamically linked (%v): distroless static has no libc", p.Type)
		}
	}
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("binary not stripped: has section %s (-s -w)", s.Name)
		}
	}

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Path != "github.com/volandoo/fluxiondb/cmd/fluxiondb" {
		t.Errorf("binary main package %q", bi.Path)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	// Go does not record -ldflags under -trimpath, and the linker ignores
	// -X for a variable that does not exist, so ask the binary itself.
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "fluxiondb "+imageVersion {
		t.Errorf("fluxiondb version = %q (%v), want %q", out, err, "fluxiondb "+imageVersion)
	}
}

// TestImageRunsSeedCommand starts the binary as the image starts it — its
// ENTRYPOINT, its ENV, no other environment — with the arguments of the
// README's docker run command, then runs the HEALTHCHECK command.
func TestImageRunsSeedCommand(t *testing.T) {
	bin := imageBinary(t)
	img := parseDockerfile(t).stage(t, "")
	toHost := func(p string) string { return strings.Replace(p, "/app/fluxiondb", bin, 1) }

	env := imageEnv(img)
	env["FLUXIONDB_HOST"] = "127.0.0.1" // tests listen on loopback only
	env["FLUXIONDB_PORT"] = "0"
	data := t.TempDir()
	// As root, start as the image does (USER 0) on a folder root owns, as Docker
	// creates a missing bind-mount source: the server must switch to
	// FLUXIONDB_RUN_AS and hand it the folder. As anyone else it runs as that user.
	asRoot := os.Geteuid() == 0 && env["FLUXIONDB_RUN_AS"] != ""
	if asRoot {
		parent, err := os.MkdirTemp("", "seed-volume")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(parent) })
		if err := os.Chmod(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		data = filepath.Join(parent, "tmp_data")
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entry := commands[*instructions.EntrypointCommand](img)[0].CmdLine
	argv := append([]string{toHost(entry[0])}, entry[1:]...)
	argv = append(argv, "--secret-key="+testKey, "--data="+data)
	srv := startServer(t, argv, env)
	if asRoot {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Split(env["FLUXIONDB_RUN_AS"], ":")
		seen := 0
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			if len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
				seen++
				id := want[0]
				if f[0] == "Gid:" {
					id = want[1]
				}
				if f[1] != id || f[2] != id || f[3] != id || f[4] != id {
					t.Errorf("the image's server runs with %q, want FLUXIONDB_RUN_AS %s", line, env["FLUXIONDB_RUN_AS"])
				}
			}
		}
		if seen != 2 {
			t.Errorf("no Uid/Gid lines in /proc/PID/status:\n%s", status)
		}
	}

	waitStatus(t, srv.addr, "/readyz", http.StatusOK)
	if code := httpStatus(t, srv.addr, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d", code)
	}
	if code := wsHandshake(t, srv.addr, testKey); code != http.StatusSwitchingProtocols {
		t.Errorf("upgrade with the master key = %d, want 101", code)
	}
	if code := wsHandshake(t, srv.addr, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("upgrade with a wrong key = %d, want 401", code)
	}

	hc := commands[*instructions.HealthCheckCommand](img)[0].Health
	_, port, _ := net.SplitHostPort(srv.addr)
	hcEnv := imageEnv(img)
	hcEnv["FLUXIONDB_PORT"] = port
	if err := runHealthcheck(hc.Test[1:], toHost, hcEnv, hc.Timeout); err != nil {
		t.Errorf("HEALTHCHECK against a running server: %v", err)
	}
	srv.stop(t)
	if err := runHealthcheck(hc.Test[1:], toHost, hcEnv, hc.Timeout); err == nil {
		t.Errorf("HEALTHCHECK passed with the server stopped")
	}
	// --data took effect: the server wrote its files into the volume.
	if entries, err := os.ReadDir(data); err != nil || len(entries) == 0 {
		t.Errorf("data directory %s is empty after a run with --data (%v)", data, err)
	}
	if asRoot {
		err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			st := info.Sys().(*syscall.Stat_t)
			if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != env["FLUXIONDB_RUN_AS"] {
				t.Errorf("%s belongs to %s, want FLUXIONDB_RUN_AS %s", path, got, env["FLUXIONDB_RUN_AS"])
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// TestChartPodRunsBinary runs the container the chart renders (README
// install: persistence on) against the real binary: its args, its env with
// the Secret resolved, its probes.
func TestChartPodRunsBinary(t *testing.T) {
	bin := imageBinary(t)
	rel := mustRender(t, setValues(t, "secret.secretKey="+testKey, "persistence.enabled=true"))
	sts := one[appsv1.StatefulSet](t, rel)
	c := container(t, sts)
	secret := one[corev1.Secret](t, rel)

	data := t.TempDir()
	mount := ""
	for _, vm := range c.VolumeMounts {
		if vm.Name == "data" {
			mount = vm.MountPath
		}
	}
	argv := []string{bin}
	for _, a := range c.Args {
		argv = append(argv, strings.ReplaceAll(a, mount, data))
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = string(secret.Data[e.ValueFrom.SecretKeyRef.Key])
		case e.ValueFrom != nil:
			t.Fatalf("env %s: only secretKeyRef is resolved here", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	env["FLUXIONDB_HOST"] = "127.0.0.1"
	env["FLUXIONDB_PORT"] = "0"
	srv := startServer(t, argv, env)

	waitStatus(t, srv.addr, c.ReadinessProbe.HTTPGet.Path, http.StatusOK)
	if code := httpStatus(t, srv.addr, c.LivenessProbe.HTTPGet.Path); code != http.StatusOK {
		t.Errorf("liveness GET %s = %d", c.LivenessProbe.HTTPGet.Path, code)
	}
	if code := wsHandshake(t, srv.addr, testKey); code != http.StatusSwitchingProtocols {
		t.Errorf("upgrade with the key from the Secret = %d, want 101", code)
	}
	srv.stop(t)
}

// server is a running fluxiondb process.
type server struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan error
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer starts argv with exactly env (as a container gets only its
// image's and spec's environment) and waits for the listening line.
func startServer(t *testing.T, argv []string, env map[string]string) *server {
	t.Helper()
	s := &server{done: make(chan error, 1)}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
		}
	})
	select {
	case s.addr = <-addrc:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("server exited before listening (%v); args %q:\n%s", err, argv[1:], s.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not log msg=listening within 20s:\n%s", s.output())
	}
	if host, _, _ := net.SplitHostPort(s.addr); host != "127.0.0.1" {
		t.Fatalf("server listens on %s, want 127.0.0.1 (FLUXIONDB_HOST ignored?)", s.addr)
	}
	return s
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and expects a clean exit, as `docker stop` and a pod
// deletion do.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v\n%s", err, s.output())
		}
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("server did not stop within 15s of SIGTERM:\n%s", s.output())
	}
}

func runHealthcheck(argv []string, toHost func(string) string, env map[string]string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, toHost(argv[0]), argv[1:]...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpStatus(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls path until it answers want, as a readiness probe does.
func waitStatus(t *testing.T, addr, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code := httpStatus(t, addr, path)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d after 15s, want %d", path, code, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsHandshake sends a WebSocket upgrade with ?api-key=key and returns the
// HTTP status of the answer; 101 means the key was accepted.
func wsHandshake(t *testing.T, addr, key string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	nonce := make([]byte, 16)
	rand.Read(nonce)
	fmt.Fprintf(conn, "GET /?api-key=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key, addr, base64.StdEncoding.EncodeToString(nonce))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
