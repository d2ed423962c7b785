package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// listenRe matches the server's slog line that gives its address.
var listenRe = regexp.MustCompile(`msg=listening addr=(\S+)`)

// ServerProc is a server process the tool started, so it knows its PID.
type ServerProc struct {
	Addr string
	PID  int

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	mu      sync.Mutex
	tail    []string // last stderr lines, for error messages
}

// StartServer runs argv[0] with argv[1:] plus --secret-key, --host=127.0.0.1
// and --port=0, and waits for the `msg=listening addr=` line on stderr. The
// server's stderr goes on to log (nil = discarded).
func StartServer(ctx context.Context, argv []string, key string, log io.Writer) (*ServerProc, error) {
	if len(argv) == 0 {
		return nil, errors.New("start server: empty command")
	}
	args := append([]string{"--secret-key=" + key, "--host=127.0.0.1", "--port=0"}, argv[1:]...)
	cmd := exec.Command(argv[0], args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	cmd.Stdout = log
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server %s: %w", argv[0], err)
	}
	p := &ServerProc{PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if log != nil {
				fmt.Fprintln(log, line)
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			if !found {
				if m := listenRe.FindStringSubmatch(line); m != nil {
					found = true
					addrc <- strings.Trim(m[1], `"`)
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case p.Addr = <-addrc:
	case <-p.exited:
		return nil, fmt.Errorf("server exited before listening (%v):\n%s", p.waitErr, p.Tail())
	case <-t.C:
		p.Stop(time.Second)
		return nil, fmt.Errorf("server printed no `msg=listening addr=` line in 15s:\n%s", p.Tail())
	case <-ctx.Done():
		p.Stop(time.Second)
		return nil, ctx.Err()
	}
	p.waitReady(5 * time.Second)
	return p, nil
}

// waitReady polls /readyz until it stops answering 503; a server without
// the endpoint (404, 426, …) is taken as ready.
func (p *ServerProc) waitReady(limit time.Duration) {
	end := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(end) {
		resp, err := c.Get("http://" + p.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL returns the WebSocket address of the server.
func (p *ServerProc) URL() string { return "ws://" + p.Addr }

// Tail returns the last lines the server wrote to stderr.
func (p *ServerProc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Stop sends SIGTERM and waits up to timeout for a graceful exit, then kills.
func (p *ServerProc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.waitErr
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("server did not stop within %s after SIGTERM; killed", timeout)
	}
}

// Mem is a process's resident memory in bytes.
type Mem struct {
	RSS int64 `json:"rss_bytes"`
	HWM int64 `json:"hwm_bytes"` // peak RSS
}

// ReadMem reads VmRSS and VmHWM from /proc/PID/status.
func ReadMem(pid int) (Mem, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Mem{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m Mem
	for line := range bytes.Lines(b) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.HWM
		default:
			continue
		}
		f := strings.Fields(string(line))
		if len(f) >= 2 {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				*dst = kb * 1024
			}
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

// ReadCPU returns the user+system CPU time of pid from /proc/PID/stat.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses; fields
	// after the last ')' start at field 3 (state); utime and stime are 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}
