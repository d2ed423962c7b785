package fluxiondb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The tests run against the real server, built once from the repository
// root (two levels up) into a temporary directory.

var (
	serverBin      string
	serverBuildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fluxiondb-go-sdk-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin := filepath.Join(dir, "fluxiondb")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fluxiondb")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		serverBuildErr = fmt.Errorf("go build ./cmd/fluxiondb: %v\n%s", err, out)
	} else {
		serverBin = bin
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const masterKey = "test-master-key"

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// testServer is one running server process.
type testServer struct {
	t    testing.TB
	args []string
	addr string // host:port

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	log  strings.Builder
}

// startServer starts the server on 127.0.0.1 and a free port; it is
// stopped when the test ends.
func startServer(t testing.TB, extraArgs ...string) *testServer {
	t.Helper()
	if serverBin == "" {
		t.Fatalf("cannot build the server: %v", serverBuildErr)
	}
	s := &testServer{t: t, args: extraArgs}
	s.start("0")
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) url() string { return "ws://" + s.addr }

func (s *testServer) port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

func (s *testServer) start(port string) {
	s.t.Helper()
	args := append([]string{"--secret-key=" + masterKey, "--host=127.0.0.1", "--port=" + port}, s.args...)
	cmd := exec.Command(serverBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil && !sent {
				addrCh <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addrCh:
		s.mu.Lock()
		s.addr, s.cmd, s.done = a, cmd, done
		s.mu.Unlock()
	case <-done:
		s.t.Fatalf("server exited before listening:\n%s", s.logText())
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("server did not report its address:\n%s", s.logText())
	}
}

func (s *testServer) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// kill ends the process with SIGKILL, as a crash would.
func (s *testServer) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// restart starts the server again on the same port.
func (s *testServer) restart() {
	s.t.Helper()
	port := s.port()
	// The port was just released; retry briefly in case the kernel has
	// not let go of it yet.
	var lastErr error
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			_ = ln.Close()
			s.start(port)
			return
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("port %s not free for restart: %v", port, lastErr)
}

// stop ends the process gracefully (SIGTERM), or kills it after 5s.
func (s *testServer) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// newTestClient connects a client with the master key; it is closed when
// the test ends.
func newTestClient(t testing.TB, s *testServer, opts ...Option) *Client {
	t.Helper()
	return newKeyClient(t, s, masterKey, opts...)
}

func newKeyClient(t testing.TB, s *testServer, key string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.url(), key, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
