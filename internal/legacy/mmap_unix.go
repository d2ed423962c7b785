//go:build unix

package legacy

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the file at path read-only. The import reads a fluxion.db once and touches
// only its table pages: mapped, the index and free pages that make up most of a real file
// are never read into memory (read whole, a 1 GB file took 1.2–1.6 GB of memory to import
// a few hundred MB of data).
func mapFile(path string) (b []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map", path, size)
	}
	b, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
