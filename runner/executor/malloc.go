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
// Measured on the 2-core AVX2 machine of BENCHMARKS.md with `perf stat -e page-faults` around
// the ddpm benchmarks, in interleaved pairs (without → with): a base-64 DDPM step on 64 images
// (BenchmarkSample64, 12 steps) took 0.645 → 0.402 s and 0.549 → 0.497 s, with 690,000 →
// 146,000 and 618,000 → 144,000 page faults; a training step of 128 images (BenchmarkTrainStep,
// 4–6 steps) ran at 49.9 → 45.4, 49.9 → 48.3, 51.2 → 55.7 and 44.6 → 57.1 images/s with about
// 3.4× fewer faults: no loss shown. A Python process runs libtorch on its main thread, whose
// arena behaves better, so this also removes a difference between the Go side and PyTorch.
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
