package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestParseUIDGID(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"65532:65532", 65532, 65532, true},
		{"1000:100", 1000, 100, true},
		{"0:0", 0, 0, true},
		{"65532", 0, 0, false},
		{"nonroot:nonroot", 0, 0, false},
		{"-1:5", 0, 0, false},
		{"5:", 0, 0, false},
	} {
		uid, gid, err := parseUIDGID(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (uid != tc.uid || gid != tc.gid)) {
			t.Errorf("parseUIDGID(%q) = %d, %d, %v", tc.in, uid, gid, err)
		}
	}
}

// TestStartAsRootDropsToRunAs starts the binary as root the way the Docker image does
// (FLUXIONDB_RUN_AS=65532:65532) on a data folder that root owns, as Docker creates a
// missing bind-mount source: the server must hand the folder over, run as 65532 and keep
// its data across a restart.
func TestStartAsRootDropsToRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs to start the server as root (the Docker image's start-up); this run is not root")
	}
	bin := buildBinary(t)
	base, err := os.MkdirTemp("", "runas")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755)) // the new user must be able to reach the folder
	// --data names the folder through a symbolic link: the folder itself must be handed over.
	real := filepath.Join(base, "real")
	must(t, os.MkdirAll(filepath.Join(real, "wal"), 0o755)) // root's, like a folder from an earlier run as root
	data := filepath.Join(base, "data")
	must(t, os.Symlink(real, data))
	runAs := []string{"FLUXIONDB_RUN_AS=65532:65532"}

	p := startServer(t, bin, data, runAs)
	if p.addr == "" {
		t.Fatalf("did not start:\n%s", p.log.String())
	}
	if !strings.Contains(p.log.String(), "switched to it") {
		t.Errorf("the switch is not logged:\n%s", p.log.String())
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	must(t, err)
	want := map[string]string{"Uid:": "65532 65532 65532 65532", "Gid:": "65532 65532 65532 65532", "Groups:": ""}
	for line := range strings.Lines(string(status)) {
		f := strings.Fields(line)
		if w, ok := want[f[0]]; ok {
			if got := strings.Join(f[1:], " "); got != w {
				t.Errorf("server process: %s %q, want %q", f[0], got, w)
			}
			delete(want, f[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("/proc/PID/status lacks %v:\n%s", want, status)
	}
	c := dial(t, p.addr, persistKey)
	c.call(t, "ins", []map[string]any{{"col": "c", "doc": "d0", "ts": 1, "data": "x"}})
	c.close()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log.String())
	}
	files := 0
	must(t, filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != 65532 || st.Gid != 65532 {
			t.Errorf("%s belongs to %d:%d, want 65532:65532", path, st.Uid, st.Gid)
		}
		files++
		return nil
	}))
	if files < 3 {
		t.Errorf("only %d entries in the data folder", files)
	}

	p = startServer(t, bin, data, runAs)
	if p.addr == "" {
		t.Fatalf("did not start again:\n%s", p.log.String())
	}
	if n := countRecords(t, p.addr); n != 1 {
		t.Errorf("%d records after the restart, want 1", n)
	}
	p.stop(t)

	p = startServer(t, bin, data, []string{"FLUXIONDB_RUN_AS=nonroot"})
	if p.addr != "" || p.cmd.ProcessState.ExitCode() != 1 || !strings.Contains(p.log.String(), "FLUXIONDB_RUN_AS") {
		t.Errorf("a bad FLUXIONDB_RUN_AS: addr %q, log:\n%s", p.addr, p.log.String())
	}
}

// TestRunAsReadsTheKeyAsRoot: a TLS key readable by root alone (mode 0600, the usual) is read
// before FLUXIONDB_RUN_AS drops root; it was read after, and the start failed.
func TestRunAsReadsTheKeyAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs to start the server as root (the Docker image's start-up); this run is not root")
	}
	bin := buildBinary(t)
	base, err := os.MkdirTemp("", "runas-tls")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	certDir := filepath.Join(base, "tls")
	must(t, os.Mkdir(certDir, 0o700)) // root's alone
	certFile, keyFile, _ := writeTLSCert(t, certDir, "runas")
	data := filepath.Join(base, "data")
	p := startServer(t, bin, data, []string{"FLUXIONDB_RUN_AS=65532:65532", "FLUXIONDB_TLS_CERT=" + certFile, "FLUXIONDB_TLS_KEY=" + keyFile})
	if p.addr == "" || !strings.Contains(p.log.String(), "scheme=wss") {
		t.Fatalf("did not start with TLS:\n%s", p.log.String())
	}
	p.stop(t)
}
