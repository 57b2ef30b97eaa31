package executor

import "strings"

// MallocTunables are the glibc malloc settings that every libtorch child runs with, passed as
// GLIBC_TUNABLES (glibc manual, "Memory Allocation Tunables"):
//
//	arena_max=1               one arena: the child's libtorch thread is not the main thread (it
//	                          is a Go thread locked with runtime.LockOSThread), and a thread arena
//	                          gives freed memory back to the kernel eagerly
//	mmap_threshold=1 GiB      a tensor's buffer comes from the heap and is reused, instead of
//	                          a fresh mmap whose every page faults in (zeroed) on first touch;
//	                          setting it also turns off glibc's dynamic threshold
//	trim_threshold=4 GiB − 1  the heap is not trimmed between steps, so resident memory stays at
//	                          its high-water mark instead of being unmapped and faulted in again
//
// What it saves is counted, not timed: `perf stat -e page-faults` around the ddpm benchmarks
// on the 2-core AVX2 machine of BENCHMARKS.md gives 4.3–4.8× fewer page faults for a base-64
// DDPM step (618,000–690,000 → 144,000–146,000 over 12 steps of 64 images) and 3.4× fewer for
// a training step. In the profile the faults were about 2 points of a sampling step's time
// (exc_page_fault and clear_page_erms: 4.7% of Go's samples against 2.7% of PyTorch's), which
// is below this VM's round-to-round noise: six interleaved timing pairs went three each way.
// Results do not change (an allocator setting); peak RSS rose 2–7%. A Python process runs
// libtorch on its main thread, so this also removes a difference between the Go side and PyTorch.
// runner/scripts/bench.sh gives the Go benchmarks the same value (TestBenchUsesMallocTunables).
const MallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=1073741824"

// ChildEnv returns the environment entries, KEY=VALUE, that a libtorch child adds to environ:
// GLIBC_TUNABLES=MallocTunables, unless environ already sets GLIBC_TUNABLES (the user's
// setting wins, whole).
func ChildEnv(environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			return nil
		}
	}
	return []string{"GLIBC_TUNABLES=" + MallocTunables}
}
