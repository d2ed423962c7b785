//go:build !unix

package wal

import (
	"os"
	"path/filepath"
)

// lockDir on systems without flock only creates the LOCK file; the server targets Linux.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
}
