package wal

import (
	"io"
	"os"
)

// fileSystem is the narrow slice of the OS the log uses. Tests swap in a version that fails
// writes or fsyncs on demand (ENOSPC, EIO) to exercise the disk-trouble paths.
type fileSystem interface {
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]os.DirEntry, error)
	MkdirAll(name string, perm os.FileMode) error
	Remove(name string) error
	Rename(from, to string) error
	Truncate(name string, size int64) error
	SyncDir(name string) error
}

// file is an open segment.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(from, to string) error                 { return os.Rename(from, to) }
func (osFS) Truncate(name string, size int64) error       { return os.Truncate(name, size) }

// SyncDir makes renames, creations and removals in the folder durable.
func (osFS) SyncDir(name string) error { return SyncDir(name) }

// SyncDir fsyncs a folder, making renames, creations and removals in it durable (the
// snapshot writer uses it too).
func SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncFile opens name and fsyncs it (used after truncating a file by name).
func syncFile(fs fileSystem, name string) error {
	f, err := fs.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
