//go:build !unix

package legacy

import "os"

// mapFile reads the file whole where mapping is not available.
func mapFile(path string) (b []byte, unmap func() error, err error) {
	b, err = os.ReadFile(path)
	return b, func() error { return nil }, err
}
