package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// runArgs runs the command in-process with a context that is already cancelled, so a
// configuration that would serve stops at once; it returns the exit code and outputs.
func runArgs(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestConfigErrorNamesTheEnvironment: a bad value that came from the environment is reported
// with the variable's name beside the flag's, and only then.
func TestConfigErrorNamesTheEnvironment(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		args   []string
		env    []string
		naming bool
	}{
		{[]string{"-s", "k"}, []string{"FLUXIONDB_FSYNC", "sometimes"}, true},
		{[]string{"-s", "k", "--fsync=bad"}, []string{"FLUXIONDB_FSYNC", "sometimes"}, false},
		{[]string{"-s", "k", "-f", "0"}, []string{"FLUXIONDB_FLUSH_INTERVAL", "3"}, false},
		{[]string{"-s", "k"}, []string{"FLUXIONDB_FLUSH_INTERVAL", "-3"}, true},
	} {
		_, err := parseConfig(tc.args, env(tc.env...), io.Discard)
		if err == nil {
			t.Fatalf("%v %v: no error", tc.args, tc.env)
		}
		if got := strings.Contains(err.Error(), "set in the environment: "+tc.env[0]); got != tc.naming {
			t.Errorf("%v %v: %v; naming %s: %v, want %v", tc.args, tc.env, err, tc.env[0], got, tc.naming)
		}
	}
}

func TestConfigFlagsAndEnv(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   []string
		check func(*config) bool
	}{
		{"defaults", []string{"--secret-key=k"}, nil, func(c *config) bool {
			return c.SecretKey == "k" && c.Port == 8080 && c.FlushInterval == 15 && c.MaxMessageSize == 16<<20 && c.Data == "" && c.MaxBatchRecords == 0
		}},
		{"long flags", []string{"--secret-key", "k", "--port=9000", "--host=127.0.0.1", "--flush-interval=3", "--max-message-size=1MiB", "--log-level=debug"}, nil,
			func(c *config) bool {
				return c.Port == 9000 && c.Host == "127.0.0.1" && c.FlushInterval == 3 && c.MaxMessageSize == 1<<20 && c.LogLevel == "debug"
			}},
		{"short flags", []string{"-s", "short", "-p", "9001", "-d", "/tmp/x", "-f", "7"}, nil, func(c *config) bool {
			return c.SecretKey == "short" && c.Port == 9001 && c.Data == "/tmp/x" && c.FlushInterval == 7
		}},
		{"env", nil, []string{"FLUXIONDB_SECRET_KEY", "envkey", "FLUXIONDB_PORT", "9002", "FLUXIONDB_DATA", "/tmp/y",
			"FLUXIONDB_FLUSH_INTERVAL", "4", "FLUXIONDB_MAX_MESSAGE_SIZE", "2048", "FLUXIONDB_HOST", "::1", "FLUXIONDB_LOG_LEVEL", "warn"},
			func(c *config) bool {
				return c.SecretKey == "envkey" && c.Port == 9002 && c.Data == "/tmp/y" && c.FlushInterval == 4 && c.MaxMessageSize == 2048 && c.Host == "::1" && c.LogLevel == "warn"
			}},
		{"flag overrides env", []string{"--port=9003", "-s", "flag"}, []string{"FLUXIONDB_SECRET_KEY", "env", "FLUXIONDB_PORT", "9002"},
			func(c *config) bool { return c.SecretKey == "flag" && c.Port == 9003 }},
		{"short flag overrides env", []string{"-p", "9004"}, []string{"FLUXIONDB_SECRET_KEY", "env", "FLUXIONDB_PORT", "9002"},
			func(c *config) bool { return c.SecretKey == "env" && c.Port == 9004 }},
		{"port 0", []string{"-s", "k", "--port=0"}, nil, func(c *config) bool { return c.Port == 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var usage bytes.Buffer
			c, err := parseConfig(tc.args, env(tc.env...), &usage)
			if err != nil {
				t.Fatalf("parseConfig: %v (%s)", err, usage.String())
			}
			if !tc.check(c) {
				t.Errorf("config = %+v", *c)
			}
		})
	}
}

func TestBadCommandLineExits2(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     []string
		mention string
	}{
		{"missing secret", nil, nil, "secret-key"},
		{"empty secret", []string{"--secret-key="}, nil, "secret-key"},
		{"port not a number", []string{"-s", "k", "--port=abc"}, nil, "port"},
		{"port out of range", []string{"-s", "k", "--port=70000"}, nil, "port"},
		{"negative port", []string{"-s", "k", "-p", "-1"}, nil, "port"},
		{"flush interval zero", []string{"-s", "k", "--flush-interval=0"}, nil, "flush-interval"},
		{"bad message size", []string{"-s", "k", "--max-message-size=lots"}, nil, "max-message-size"},
		{"zero message size", []string{"-s", "k", "--max-message-size=0"}, nil, "max-message-size"},
		{"bad log level", []string{"-s", "k", "--log-level=loud"}, nil, "log-level"},
		{"rate limit not a number", []string{"-s", "k", "--rate-limit=NaN"}, nil, "rate-limit"},
		{"infinite rate limit", []string{"-s", "k", "--rate-limit=Inf"}, nil, "rate-limit"},
		{"ping interval of a nanosecond", []string{"-s", "k", "--ping-interval=1ns"}, nil, "ping-interval"},
		{"idle timeout of a millisecond", []string{"-s", "k", "--idle-timeout=1ms"}, nil, "idle-timeout"},
		{"unknown flag", []string{"-s", "k", "--no-such-flag"}, nil, "no-such-flag"},
		{"stray argument", []string{"-s", "k", "extra"}, nil, "extra"},
		{"bad env value", nil, []string{"FLUXIONDB_SECRET_KEY", "k", "FLUXIONDB_PORT", "eighty"}, "FLUXIONDB_PORT"},
		{"missing secret with env for others", nil, []string{"FLUXIONDB_PORT", "9000"}, "secret-key"},
		{"backup without a destination", []string{"backup", "--data", "/x"}, nil, "DEST"},
		{"backup without a data folder", []string{"backup", "/y"}, nil, "--data DIR"},
		{"backup with two destinations", []string{"backup", "-d", "/x", "/y", "/z"}, nil, "one destination"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, env(tc.env...), tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.mention) {
				t.Errorf("stderr %q does not say what is wrong (%q)", stderr, tc.mention)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"-s", "k", "--help"}} {
		code, stdout, stderr := runArgs(t, env(), args...)
		if code != 0 {
			t.Errorf("%v: exit code %d, want 0", args, code)
		}
		// Asked-for help goes to stdout (`fluxiondb --help | less`), flags as users type them.
		for _, want := range []string{"-s, --secret-key string", "-d, --data string", "    --max-message-size size", "(default 10s)", "FLUXIONDB_"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%v: usage lacks %q: %s", args, want, stdout)
			}
		}
		if stderr != "" {
			t.Errorf("%v: stderr %q, want nothing", args, stderr)
		}
	}
	// A mistake gets one line saying what is wrong, not the whole usage.
	if code, _, stderr := runArgs(t, env(), "-s", "k", "--no-such-flag"); code != 2 || strings.Count(stderr, "\n") > 2 || strings.Contains(stderr, "Flags:") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}
	// Subcommands alike: --help on stdout with exit 0, flags GNU style; a mistake is one line.
	for _, tc := range []struct{ cmd, flag string }{{"healthcheck", "--port int"}, {"repair", "-d, --data string"}, {"backup", "-d, --data string"}} {
		code, stdout, stderr := runArgs(t, env(), tc.cmd, "--help")
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage: fluxiondb "+tc.cmd) || !strings.Contains(stdout, tc.flag) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", tc.cmd, code, stdout, stderr)
		}
		if code, _, stderr := runArgs(t, env(), tc.cmd, "--no-such-flag"); code != 2 || strings.Count(stderr, "\n") > 2 || strings.Contains(stderr, "Flags:") {
			t.Errorf("%s with an unknown flag: exit %d, stderr %q", tc.cmd, code, stderr)
		}
	}
	// FLUXIONDB_VERSION (deployment tooling sets such variables) is not the --version flag.
	if c, err := parseConfig([]string{"-s", "k"}, env("FLUXIONDB_VERSION", "1.4.0"), io.Discard); err != nil || c.Version {
		t.Errorf("FLUXIONDB_VERSION in the environment: %v, version=%v", err, c != nil && c.Version)
	}
	for _, args := range [][]string{{"--version"}, {"--version", "-s", "k"}} {
		code, stdout, _ := runArgs(t, env(), args...)
		if code != 0 || !strings.HasPrefix(stdout, "fluxiondb ") {
			t.Errorf("%v: exit %d, stdout %q; want 0 and the version", args, code, stdout)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// talk connects to addr with key, checks the ready frame and one request, and returns the
// connection open.
func talk(t *testing.T, addr, key string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/?api-key="+key, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_, ready, err := ws.Read(ctx)
	if err != nil || string(ready) != `{"message":"Authentication successful","type":"ready"}` {
		t.Fatalf("ready frame %q, %v", ready, err)
	}
	req := `{"id":"1","type":"ins","data":"[{\"ts\":9007199254740993,\"doc\":\"d\",\"data\":\"x\",\"col\":\"c\"}]"}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	if _, rep, err := ws.Read(ctx); err != nil || string(rep) != `{"id":"1"}` {
		t.Fatalf("ins reply %q, %v", rep, err)
	}
	req = `{"id":"2","type":"qry","data":"{\"col\":\"c\",\"ts\":9223372036854775807}"}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	if _, rep, err := ws.Read(ctx); err != nil || string(rep) != `{"id":"2","records":{"d":{"ts":9007199254740993,"data":"x"}}}` {
		t.Fatalf("qry reply %q, %v", rep, err)
	}
	return ws
}

// expectGoingAway reads until the close and requires 1001.
func expectGoingAway(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("connection ended with %v, want close 1001", err)
	}
}

// TestRunServes runs the whole command in-process: listen on 127.0.0.1:0, serve, stop on
// context cancellation (what SIGTERM does through signal.NotifyContext) with exit code 0.
func TestRunServes(t *testing.T) {
	p, addr := startInProcess(t, []string{"--host=127.0.0.1", "--port=0"}, env("FLUXIONDB_SECRET_KEY", "runkey"), listenRE)
	stderr := p.log
	ws := talk(t, addr, "runkey")
	defer ws.CloseNow()
	// An HTTP connection that never sends a request must not hold the shutdown up: the
	// HTTP server waits up to 5 s for such a connection, which used to use up the whole
	// budget before the WebSocket clients were closed (they then got 1006, not 1001).
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	stopAt := time.Now()
	p.cancel()
	expectGoingAway(t, ws)
	select {
	case <-p.exited:
		if p.code != 0 {
			t.Errorf("exit code %d, want 0: %s", p.code, stderr.String())
		}
		if d := time.Since(stopAt); d > 3*time.Second {
			t.Errorf("shutdown took %v with an idle HTTP connection open", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if strings.Contains(stderr.String(), "runkey") {
		t.Errorf("the secret appears in the log: %s", stderr.String())
	}
}

// TestBinary builds the real binary, runs it on 127.0.0.1:0, talks to it and stops it with
// SIGTERM: exit code 0.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "fluxiondb")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--secret-key=binkey", "--host=127.0.0.1", "--port=0")
	cmd.Env = append(os.Environ(), "FLUXIONDB_PORT=") // the flags decide
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrc := make(chan string, 1)
	var logMu sync.Mutex
	var logText strings.Builder
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logText.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(15 * time.Second):
		t.Fatal("the binary did not log its listening address")
	}
	ws := talk(t, addr, "binkey")
	defer ws.CloseNow()
	// SIGHUP without TLS has nothing to reload; its default action would end the process.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		logMu.Lock()
		seen := strings.Contains(logText.String(), "nothing to reload")
		logMu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no log line for SIGHUP")
		}
	}
	talk(t, addr, "binkey").CloseNow() // still serving
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expectGoingAway(t, ws)
	<-readerDone
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil {
		logMu.Lock()
		t.Errorf("exit after SIGTERM: %v, want code 0\n%s", err, logText.String())
		logMu.Unlock()
	}
}

// TestBackupCommandLine: DEST may come before or after the flags; a data folder that does
// not exist is exit 1 with what is wrong, and no destination is left behind.
func TestBackupCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	for _, args := range [][]string{
		{"backup", "--data", missing, filepath.Join(t.TempDir(), "b1")},
		{"backup", filepath.Join(t.TempDir(), "b2"), "-d", missing},
	} {
		code, stdout, stderr := runArgs(t, env(), args...)
		if code != 1 || !strings.Contains(stderr, "data folder") || !strings.Contains(stderr, missing) {
			t.Errorf("%v: exit %d, stderr %q; want 1 naming the missing data folder", args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q", args, stdout)
		}
	}
	// A folder no server used (a mistyped path) is refused rather than copied as empty.
	dir := t.TempDir()
	dest := filepath.Join(t.TempDir(), "b3")
	if code, _, stderr := runArgs(t, env("FLUXIONDB_DATA", dir), "backup", dest); code != 1 || !strings.Contains(stderr, "not a FluxionDB data folder") {
		t.Errorf("backup of a folder without wal/: exit %d, stderr %q", code, stderr)
	}
	// A data folder a server made but that holds no change yet copies as such (--data from
	// the environment).
	if err := os.Mkdir(filepath.Join(dir, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"backup", dest}, env("FLUXIONDB_DATA", dir), &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "backup done") {
		t.Errorf("backup of an empty data folder: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dest, "wal")); err != nil {
		t.Errorf("the backup is not a data folder: %v", err)
	}
	// SIGINT/SIGTERM (they end the context main gives run; runArgs passes an ended one) stop a
	// backup, which removes its copy.
	dest2 := filepath.Join(t.TempDir(), "b4")
	if code, _, stderr := runArgs(t, env(), "backup", "-d", dir, dest2); code != 1 || !strings.Contains(stderr, "interrupted") {
		t.Errorf("backup after SIGINT: exit %d, stderr %q; want 1 and \"interrupted\"", code, stderr)
	}
	if _, err := os.Stat(dest2); !os.IsNotExist(err) {
		t.Errorf("an interrupted backup left %s behind (%v)", dest2, err)
	}
}

// TestImportCommand: `fluxiondb import` brings the original server's folder over, and a start
// on that folder says to run it instead of starting empty.
func TestImportCommand(t *testing.T) {
	old := t.TempDir()
	if err := os.MkdirAll(filepath.Join(old, "sensors", "device-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "sensors", "device-1", "1700000015000.json"), []byte(`[{"ts":1,"data":"x"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs(t, env(), "-s", "k", "--port=0", "--data="+old)
	if code != 1 || !strings.Contains(stderr, "fluxiondb import --from "+old+" --data NEWDIR") {
		t.Fatalf("start on the old folder: exit %d, stderr %q", code, stderr)
	}
	dest := filepath.Join(t.TempDir(), "new")
	// runArgs's context is cancelled, which stops an import half way (and removes it).
	if code, _, stderr := runArgs(t, env(), "import", "--from", old, "--data", dest); code != 1 || !strings.Contains(stderr, "context canceled") {
		t.Fatalf("cancelled import: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a cancelled import left %s: %v", dest, err)
	}
	var out, errOut bytes.Buffer
	code = run(context.Background(), []string{"import", "--from", old, "--data", dest}, env(), &out, &errOut)
	stdout, stderr := out.String(), errOut.String()
	if code != 0 || !strings.Contains(stdout, "import: 1 collections, 1 documents, 1 records, 0 values, 0 API keys from 1 files") {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code := run(context.Background(), []string{"import", "--from", old, "--data", dest}, env(), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not empty") {
		t.Fatalf("second import into the same folder: exit %d, stderr %q", code, errOut.String())
	}
	if code, _, _ := runArgs(t, env(), "import", "--data", dest); code != 2 {
		t.Fatalf("import without --from: exit %d, want 2", code)
	}
}

// TestPprofKeepsTheCommandLine: the pprof listener asks for no key, so it does not serve the
// command line, which may hold --secret-key; it logs the address it listens on.
func TestPprofKeepsTheCommandLine(t *testing.T) {
	p, addr := startInProcess(t, []string{"--host=127.0.0.1", "--port=0", "--secret-key=pprof-master-secret", "--pprof-addr=127.0.0.1:0"},
		env(), regexp.MustCompile(`msg="pprof listening" addr=(\S+)`))
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// In a real process it shows os.Args, --secret-key included (here, the test binary's).
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/debug/pprof/cmdline answers %d (%q), want 404", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("profiles are still served: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestBadPprofAddrStopsTheStart: an address --pprof-addr cannot listen on stops the start, as
// a bad --metrics-addr does (the server ran on without the listener asked for).
func TestBadPprofAddrStopsTheStart(t *testing.T) {
	code, _, stderr := runArgs(t, env("FLUXIONDB_SECRET_KEY", "k"), "--host=127.0.0.1", "--port=0", "--pprof-addr=256.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "cannot listen for pprof") {
		t.Fatalf("exit %d, %q; want 1 and the listener's error", code, stderr)
	}
}

// TestFailedStartLogsOnlyJSON: with --log-format json every line a failed start writes is
// JSON, its hints included (a plain "fluxiondb: cannot start" line followed the JSON one).
func TestFailedStartLogsOnlyJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs(t, env("FLUXIONDB_SECRET_KEY", "k"), "--host=127.0.0.1", "--port=0", "--log-format=json", "--data="+filepath.Join(file, "d"))
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON line: %q", l)
		}
	}
	if !strings.Contains(stderr, "cannot open the database") {
		t.Errorf("no error line: %s", stderr)
	}
}

// TestHealthcheckFollowsHostAndPort: healthcheck asks the address the server's environment
// names (FLUXIONDB_HOST and FLUXIONDB_PORT); it asked 127.0.0.1 whatever the host, and
// silently used 8080 for a port variable that is not a number.
func TestHealthcheckFollowsHostAndPort(t *testing.T) {
	p, addr := startInProcess(t, []string{"--host=127.0.0.2", "--port=0"}, env("FLUXIONDB_SECRET_KEY", "hckey"), listenRE)
	_, port, _ := net.SplitHostPort(addr)
	var out bytes.Buffer
	if code := healthcheck(nil, env("FLUXIONDB_HOST", "127.0.0.2", "FLUXIONDB_PORT", port), io.Discard, &out); code != 0 {
		t.Errorf("healthcheck with the server's host and port: exit %d, %s", code, out.String())
	}
	out.Reset()
	if code := healthcheck([]string{"--host=127.0.0.2", "--port=" + port}, env(), io.Discard, &out); code != 0 {
		t.Errorf("healthcheck --host --port: exit %d, %s", code, out.String())
	}
	out.Reset()
	if code := healthcheck(nil, env("FLUXIONDB_PORT", "abc"), io.Discard, &out); code != 2 || !strings.Contains(out.String(), "FLUXIONDB_PORT") {
		t.Errorf("healthcheck with FLUXIONDB_PORT=abc: exit %d, %q; want 2 naming the variable", code, out.String())
	}
	p.stop(t)
}

// inProcess is the whole command running in-process (run), as startInProcess started it.
type inProcess struct {
	cancel context.CancelFunc // what SIGTERM does through signal.NotifyContext
	exited chan struct{}      // closed when run has returned, with code set
	code   int
	log    *syncBuffer // its standard error
}

// startInProcess runs the command with args and getenv until the test ends, and returns it
// once its log matches re, with re's first submatch (a listening address).
func startInProcess(t *testing.T, args []string, getenv func(string) string, re *regexp.Regexp) (*inProcess, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, exited: make(chan struct{}), log: &syncBuffer{}}
	go func() {
		p.code = run(ctx, args, getenv, io.Discard, p.log)
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.exited:
			t.Fatalf("run exited with %d before %s: %s", p.code, re, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %q", re, p.log.String())
		}
	}
}

// stop cancels the run and returns its exit code (it may be called more than once).
func (p *inProcess) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
		return -1
	}
}

// TestJSONLogDurationsHaveUnits: in JSON logs a duration is text with its unit, as in text
// mode; it was a bare number of nanoseconds.
func TestJSONLogDurationsHaveUnits(t *testing.T) {
	var out bytes.Buffer
	newLogger(&config{LogFormat: "json", LogLevel: "info"}, &out).Info("x", "took", 1500*time.Microsecond)
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["took"] != "1.5ms" {
		t.Fatalf("took = %#v, want \"1.5ms\"", m["took"])
	}
}
