//go:build ignore

// diskcost measures what logging costs the machine's CPU below the server: it writes 512 MiB
// to a file in 190 KiB writes (the log's average write under --fsync=interval), fsyncing
// every N MiB (0: once, at the end), and prints the machine's busy CPU ticks (every
// /proc/stat state but idle and iowait, so kernel threads and interrupts count too) for the
// writes and for the last fsync. Run it on an idle machine:
//
//	go run scripts/diskcost.go -every 8 -file /data/diskcost.tmp
//
// -mode compares other ways of getting the bytes to the file (Linux only): direct (O_DIRECT,
// the page cache bypassed; -size must be a multiple of 4 KiB, e.g. -size 1024) and mmap (copied
// into a shared mapping of the file, its pages faulted in a MiB at a time by
// MADV_POPULATE_WRITE). Busy ticks count the whole machine, so the kernel's writeback counts.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// busyTicks returns the machine's busy ticks (USER_HZ) from /proc/stat's cpu line.
func busyTicks() int64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan()
	var busy int64
	for i, field := range strings.Fields(s.Text())[1:] {
		v, _ := strconv.ParseInt(field, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy
}

func main() {
	every := flag.Int("every", 8, "MiB between fsyncs; 0 = a single fsync at the end")
	path := flag.String("file", "diskcost.tmp", "file to write (removed afterwards)")
	mode := flag.String("mode", "write", "write | direct | mmap")
	kib := flag.Int("size", 190, "KiB per write (per copy for mmap)")
	flag.Parse()
	const total = 512 << 20
	size := *kib << 10
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if *mode == "direct" {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(*path, flags, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(*path)
	var out []byte // mmap: the file's shared mapping
	if *mode == "mmap" {
		if err := f.Truncate(total); err != nil {
			log.Fatal(err)
		}
		if out, err = syscall.Mmap(int(f.Fd()), 0, total, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED); err != nil {
			log.Fatal(err)
		}
	}
	buf := alignedBuf(size) // O_DIRECT needs an aligned buffer
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	t0 := busyTicks()
	since, populated := 0, 0
	for n := 0; n+size <= total; n += size {
		switch *mode {
		case "mmap":
			for populated < n+size {
				const madvPopulateWrite = 23 // MADV_POPULATE_WRITE, Linux 5.14
				if err := syscall.Madvise(out[populated:populated+1<<20], madvPopulateWrite); err != nil {
					log.Fatal(err)
				}
				populated += 1 << 20
			}
			copy(out[n:], buf)
		default:
			if _, err := f.Write(buf); err != nil {
				log.Fatal(err)
			}
		}
		if since += size; *every > 0 && since >= *every<<20 {
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
			since = 0
		}
	}
	t1 := busyTicks()
	if err := f.Sync(); err != nil {
		log.Fatal(err)
	}
	t2 := busyTicks()
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d KiB, fsync every %d MiB: busy ticks %d while writing, %d for the last fsync, %d in all (512 MiB)\n",
		*mode, *kib, *every, t1-t0, t2-t1, t2-t0)
}

// alignedBuf returns n bytes starting on a 4 KiB boundary.
func alignedBuf(n int) []byte {
	raw := make([]byte, n+4096)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & 4095)
	return raw[off : off+n]
}
