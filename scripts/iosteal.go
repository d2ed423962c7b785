//go:build ignore

// iosteal measures what writing to the disk costs the rest of the machine, beyond the CPU
// the writer itself is seen to use: two threads spin on a CPU-bound loop for 5 s (one per
// core of the project's 2-core VM) while a third writes 1 MiB pieces to a file at a fixed
// rate, fsyncing every -every MiB, and the spinners' rate is compared with a run without
// the writer. On a VM whose disk is emulated by the host, the device's work can take time
// from the guest's CPUs that no guest process is charged for.
//
//	go run scripts/iosteal.go -rate 0              # spinners alone
//	go run scripts/iosteal.go -rate 80 -every 8    # and 80 MB/s written, fsync every 8 MiB
//	go run scripts/iosteal.go -rate 80 -every 0    # the same writes, never fsynced in the run
//
// It prints the spinners' loops per second and the machine's ticks from /proc/stat over the
// run (USER_HZ: 1000 on 2 cores in 5 s). Run it on an idle machine, alternating settings.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	rate := flag.Float64("rate", 80, "MB/s to write (0: no writer)")
	every := flag.Int("every", 8, "MiB between fsyncs (0: none during the run)")
	path := flag.String("file", "iosteal.tmp", "file to write (removed afterwards)")
	flag.Parse()
	runtime.GOMAXPROCS(3)

	var loops atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			runtime.LockOSThread()
			x := uint64(1)
			for {
				for range 100000 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				loops.Add(1)
				select {
				case <-stop:
					if x == 42 { // keep the loop from being optimized away
						fmt.Print("")
					}
					return
				default:
				}
			}
		})
	}

	var written atomic.Int64
	start := time.Now()
	before := machineTicks()
	if *rate > 0 {
		f, err := os.OpenFile(*path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		defer os.Remove(*path)
		wg.Go(func() {
			defer f.Close()
			buf := make([]byte, 1<<20)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				for time.Since(start).Seconds()**rate < float64(written.Load()>>20) {
					time.Sleep(time.Millisecond)
				}
				if _, err := f.Write(buf); err != nil {
					log.Fatal(err)
				}
				written.Add(int64(len(buf)))
				if *every > 0 && n%*every == 0 {
					if err := f.Sync(); err != nil {
						log.Fatal(err)
					}
				}
			}
		})
	}
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	after := machineTicks()
	names := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
	fmt.Printf("rate %.0f MB/s, fsync every %d MiB: spinner loops/s %.0f, written %.0f MB/s; machine ticks:",
		*rate, *every, float64(loops.Load())/elapsed, float64(written.Load()>>20)/elapsed)
	for i, name := range names {
		fmt.Printf(" %s %d", name, after[i]-before[i])
	}
	fmt.Println()
}

// machineTicks returns the first eight fields of /proc/stat's cpu line.
func machineTicks() [8]int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		log.Fatal(err)
	}
	var v [8]int64
	if _, err := fmt.Sscanf(string(b), "cpu %d %d %d %d %d %d %d %d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]); err != nil {
		log.Fatal(err)
	}
	return v
}
