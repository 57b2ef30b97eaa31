package ddpm

/*
#include <malloc.h>
#include <stdint.h>
// Defined in gotch's libtch (torch_api.cpp), which every binary importing gotch links.
void at_manual_seed(int64_t seed);
void at_set_num_threads(int n_threads);
int at_get_num_threads();
int at_grad_set_enabled(int enabled);
void at_free(void *t);
void atg_set_source_tensor_storage_offset_(void **out, void *self, void *source, int64_t storage_offset,
	int64_t *size_data, int size_len, int64_t *stride_data, int stride_len);
*/
import "C"

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// ManualSeed seeds libtorch's global random generators (CPU and CUDA), like torch.manual_seed.
func ManualSeed(seed int64) { C.at_manual_seed(C.int64_t(seed)) }

// SetNumThreads sets libtorch's intra-op thread count for this process.
func SetNumThreads(n int) { C.at_set_num_threads(C.int(n)) }

// NumThreads reports libtorch's intra-op thread count.
func NumThreads() int { return int(C.at_get_num_threads()) }

// setGradEnabled switches libtorch's grad mode for the calling OS thread and returns the previous
// mode. (gotch v0.9.1's ts.GradSetEnabled reads the C int result as a Go int, 8 bytes, so the
// previous mode it reports is wrong; this calls the same C function and reads it correctly.)
func setGradEnabled(enabled bool) (prev bool, err error) {
	flag := C.int(0)
	if enabled {
		flag = 1
	}
	switch C.at_grad_set_enabled(flag) {
	case 0:
		return false, nil
	case 1:
		return true, nil
	default:
		return false, errors.New("libtorch: could not set grad mode")
	}
}

// setStorage makes t, in place, a view of source's storage: size elements laid out with stride,
// from element offset on (libtorch's Tensor.set_(source, storage_offset, size, stride)). Every
// handle to t sees the change, the parameter lists of layers and optimizers included, and t's
// autograd state (requires_grad, grad) stays. gotch's SetSourceTensorStorageOffset_ does the
// same but leaks t's old C handle; this frees the handle that set_ returns instead.
func setStorage(t, source *ts.Tensor, offset int64, size, stride []int64) error {
	if len(size) != len(stride) {
		return errors.New("setStorage: size and stride must have the same length")
	}
	var out unsafe.Pointer
	C.atg_set_source_tensor_storage_offset_(&out, t.Ctensor(), source.Ctensor(), C.int64_t(offset),
		int64Ptr(size), C.int(len(size)), int64Ptr(stride), C.int(len(stride)))
	if err := ts.TorchErr(); err != nil {
		return err
	}
	C.at_free(out)
	return nil
}

// int64Ptr points C at v's elements, or is nil for an empty v (a 0-d tensor's shape).
func int64Ptr(v []int64) *C.int64_t {
	if len(v) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&v[0]))
}

// LibtorchDir is the folder of the libtorch this process loaded (found through
// /proc/self/maps), or "" when it cannot be told.
func LibtorchDir() string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if i := strings.Index(line, "/"); i >= 0 && strings.HasSuffix(line, "/libtorch_cpu.so") {
			return filepath.Dir(filepath.Dir(line[i:]))
		}
	}
	return ""
}

// LibtorchVersion reads the version of the loaded libtorch from the files its distributions
// carry (version.txt written by our setup from the PyPI wheel, or build-version in
// pytorch.org's zips), or returns "unknown".
func LibtorchVersion() string {
	dir := LibtorchDir()
	if dir == "" {
		return "unknown"
	}
	for _, name := range []string{"version.txt", "build-version"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return "unknown (" + dir + ")"
}

// ReleaseMemory hands the C heap's free pages back to the operating system (glibc's
// malloc_trim). libtorch frees tensors into the C heap, which keeps the pages; trimming once an
// epoch keeps a long run's resident memory at what is live.
func ReleaseMemory() { C.malloc_trim(0) }
