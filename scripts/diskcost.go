//go:build ignore

// diskcost measures what logging costs the machine's CPU below the server: it writes 512 MiB
// to a file in 190 KiB writes (the log's average write under --fsync=interval), fsyncing
// every N MiB (0: once, at the end), and prints the machine's busy CPU ticks (every
// /proc/stat state but idle and iowait, so kernel threads and interrupts count too) for the
// writes and for the last fsync. Run it on an idle machine:
//
//	go run scripts/diskcost.go -every 8 -file /data/diskcost.tmp
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
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
	flag.Parse()
	const total, size = 512 << 20, 190 << 10
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	f, err := os.Create(*path)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(*path)
	t0 := busyTicks()
	since := 0
	for n := 0; n < total; n += size {
		if _, err := f.Write(buf); err != nil {
			log.Fatal(err)
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
	fmt.Printf("fsync every %d MiB: busy ticks %d while writing, %d for the last fsync, %d in all (512 MiB)\n",
		*every, t1-t0, t2-t1, t2-t0)
}
