// Command calibrate prints how fast this machine is right now, in the two
// ways that move the load generator's figures (docs/performance.md):
// plain CPU (SHA-256 over memory already touched) and memory touched for
// the first time (a fresh anonymous mapping written a page at a time: each
// write is a page fault the kernel serves by mapping and zeroing a page).
// On the virtual machines this project is measured on, the second varies
// several-fold from hour to hour while the first does not.
//
//	go run ./hack/calibrate
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	const size = 256 << 20
	page := os.Getpagesize()

	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	for range 4 {
		sha256.Sum256(buf)
	}
	hashed := time.Since(start)

	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Fprintln(os.Stderr, "calibrate:", err)
		os.Exit(1)
	}
	start = time.Now()
	for i := 0; i < size; i += page {
		mem[i] = 1
	}
	faulted := time.Since(start)
	_ = syscall.Munmap(mem)

	fmt.Printf("%s  cpu: sha256 %.0f MB/s  fresh memory: %.2f µs per %d-byte page\n",
		time.Now().UTC().Format("15:04:05"), float64(len(buf))*4/hashed.Seconds()/1e6,
		float64(faulted.Microseconds())/float64(size/page), page)
}
