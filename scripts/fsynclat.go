//go:build ignore

// fsynclat measures the latency of one write plus fsync, the step every --fsync=always
// reply waits for, with the file prepared four ways:
//
//	append   a new, empty file: every fsync also commits the new size to the journal
//	zero     the file written full of zeros and fsynced first: writes overwrite
//	falloc   the file fallocate'd first (unwritten extents, converted at each write)
//	zerobg   as zero, while another goroutine keeps zero-filling 64 MiB files — the
//	         price of preparing zeroed segments during sustained ingest
//
// It prints p50 and p90 of -n write+fsync pairs of -kb KiB each. Run it where the data
// folder lives, on an idle machine:
//
//	go run scripts/fsynclat.go -dir /data -mode zero
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "append", "append, zero, falloc or zerobg")
	n := flag.Int("n", 300, "write+fsync pairs")
	kb := flag.Int("kb", 190, "KiB per write (the log's average write at 1000-record batches)")
	parent := flag.String("dir", os.TempDir(), "folder for the test files")
	flag.Parse()
	dir, err := os.MkdirTemp(*parent, "fsynclat")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	size := int64(*n) * int64(*kb) << 10
	f, err := os.Create(filepath.Join(dir, "segment"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	switch *mode {
	case "append":
	case "zero", "zerobg":
		zeroFill(f, size, nil)
		if _, err := f.Seek(0, 0); err != nil {
			log.Fatal(err)
		}
	case "falloc":
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			log.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if *mode == "zerobg" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := filepath.Join(dir, fmt.Sprintf("spare%d", i))
				g, err := os.Create(name)
				if err != nil {
					log.Fatal(err)
				}
				done := zeroFill(g, 64<<20, stop)
				g.Close()
				os.Remove(name)
				if !done {
					return
				}
			}
		}()
	}

	buf := make([]byte, *kb<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	lat := make([]time.Duration, 0, *n)
	for range *n {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			log.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			log.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	fmt.Printf("%-7s %d KiB write+fsync: p50 %v p90 %v\n", *mode, *kb,
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*9/10].Round(time.Microsecond))
}

// zeroFill writes size zero bytes to f in 1 MiB writes and fsyncs it; it returns false
// when stop closed first.
func zeroFill(f *os.File, size int64, stop <-chan struct{}) bool {
	z := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(z)) {
		select {
		case <-stop:
			return false
		default:
		}
		if _, err := f.Write(z); err != nil {
			log.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		log.Fatal(err)
	}
	return true
}
