package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dropRoot does what runAsEnv describes when the process runs as root and it is set. It returns
// a description of what it did for the start-up log ("" when nothing).
func dropRoot(getenv func(string) string, data string) (string, error) {
	spec := getenv(runAsEnv)
	if spec == "" || os.Geteuid() != 0 {
		return "", nil
	}
	uid, gid, err := parseUIDGID(spec)
	if err != nil {
		return "", fmt.Errorf("%s: %w", runAsEnv, err)
	}
	if uid == 0 {
		return "", nil // root asked to stay root
	}
	if data != "" {
		if err := os.MkdirAll(data, 0o755); err != nil {
			return "", fmt.Errorf("create the --data folder %s: %w", data, err)
		}
		// The folder itself, when --data names it through a symbolic link; links inside
		// it are not followed.
		real, err := filepath.EvalSymlinks(data)
		if err != nil {
			return "", fmt.Errorf("resolve the --data folder %s: %w", data, err)
		}
		if err := chownTree(real, uid, gid); err != nil {
			return "", fmt.Errorf("hand the --data folder to %d:%d: %w", uid, gid, err)
		}
	}
	// Group first: once the user is no longer root it may not change its groups.
	if err := syscall.Setgroups(nil); err != nil {
		return "", fmt.Errorf("drop supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return "", fmt.Errorf("switch to group %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return "", fmt.Errorf("switch to user %d: %w", uid, err)
	}
	return fmt.Sprintf("%d:%d", uid, gid), nil
}

// parseUIDGID reads "uid:gid" (numbers: the image has no user database to look names up in).
func parseUIDGID(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	if ok {
		uid, err = strconv.Atoi(u)
		if err == nil {
			gid, err = strconv.Atoi(g)
		}
	}
	if !ok || err != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("%q is not uid:gid (numbers, e.g. 65532:65532)", s)
	}
	return uid, gid, nil
}

// chownTree gives root and everything below it (not following symbolic links) to uid:gid,
// touching only entries that belong to someone else.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
			return nil
		}
		return os.Lchown(path, uid, gid)
	})
}
