#!/usr/bin/env bash
# setup-libtorch.sh: make libtorch 2.1.x and gotch v0.9.1's libtch usable from this checkout.
#
# It is idempotent: every step checks for its own completion marker and is skipped when done.
#
#  1. libtorch. If GOTCH_LIBTORCH points at a libtorch (lib/ and include/), it is used as is.
#     Otherwise the PyPI wheel torch==2.1.2 (which carries libtorch, built with the pre-cxx11 ABI)
#     is fetched with `pip download --no-deps`, and torch/lib, torch/include and torch/share are
#     unpacked into $DDPMLAB_CACHE/libtorch-2.1.2 (default ~/.cache/ddpmlab). libtorch_cpu.so
#     links the CUDA runtime and CUPTI for its profiler even on CPU, so their two small wheels
#     (nvidia-cuda-runtime-cu12, nvidia-cuda-cupti-cu12, the versions torch 2.1.2 pins) are
#     unpacked beside it.
#  2. gotch's libtch. gotch's setup-gotch.sh rewrites libtch/lib.go inside the Go module cache.
#     We do the same rewrite, but on a private copy in $DDPMLAB_CACHE/gotch-<version>-<config>,
#     wired in with a generated go.work, so the module cache stays pristine, `go mod verify`
#     keeps passing, and the checkout holds only our own code. The new
#     lib.go carries the libtorch include and library paths, the C++ ABI flag that matches this
#     libtorch, and an rpath, so built binaries and test binaries run with no LD_LIBRARY_PATH.
#     CUDA libraries are linked only when this libtorch has them and a GPU driver is present.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${DDPMLAB_CACHE:-$HOME/.cache/ddpmlab}
torch_version=2.1.2
gotch_version=v0.9.1
log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- 1. libtorch -------------------------------------------------------------------------------
if [[ -n "${GOTCH_LIBTORCH:-}" ]]; then
	libtorch=$GOTCH_LIBTORCH
	[[ -d "$libtorch/lib" && -d "$libtorch/include" ]] ||
		die "GOTCH_LIBTORCH=$libtorch is not a libtorch folder (it needs lib/ and include/); unset it to install libtorch $torch_version from PyPI"
	log "using libtorch from GOTCH_LIBTORCH=$libtorch"
else
	libtorch=$cache/libtorch-$torch_version
	if [[ -f "$libtorch/.complete" ]]; then
		log "libtorch $torch_version already installed in $libtorch"
	else
		command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch the torch==$torch_version wheel from PyPI"
		mkdir -p "$cache"
		work=$(mktemp -d "$cache/.libtorch.XXXXXX")
		trap 'rm -rf "$work"' EXIT
		log "downloading torch==$torch_version from PyPI (about 670 MB, once)"
		python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache/wheels" \
			"torch==$torch_version" "nvidia-cuda-runtime-cu12==12.1.105" "nvidia-cuda-cupti-cu12==12.1.105" ||
			die "pip download failed; set GOTCH_LIBTORCH to an existing libtorch 2.1.x to skip this step"
		wheel=$(ls "$cache"/wheels/torch-$torch_version-*.whl | head -n1)
		log "unpacking libtorch from $(basename "$wheel")"
		# CPU needs libtorch_cpu, libc10 and the bundled libgomp; the CUDA libraries are 800 MB more.
		unzip -q -o "$wheel" 'torch/include/*' 'torch/share/*' 'torch/lib/libtorch_cpu.so' \
			'torch/lib/libtorch.so' 'torch/lib/libc10.so' 'torch/lib/libgomp-*' 'torch/lib/libshm.so' -d "$work"
		for w in "$cache"/wheels/nvidia_cuda_runtime_cu12-*.whl "$cache"/wheels/nvidia_cuda_cupti_cu12-*.whl; do
			unzip -q -o "$w" 'nvidia/*/lib/*.so.12' -d "$work" || true
		done
		find "$work/nvidia" -name '*.so.12' -exec mv {} "$work/torch/lib/" \;
		echo "$torch_version" >"$work/torch/version.txt"
		touch "$work/torch/.complete"
		rm -rf "$libtorch"
		mv "$work/torch" "$libtorch"
		log "libtorch $torch_version installed in $libtorch"
	fi
fi

# The C++ ABI must match the one libtorch was built with, or linking fails on std::string symbols.
abi=1
if grep -qs 'D_GLIBCXX_USE_CXX11_ABI=0' "$libtorch/share/cmake/Torch/TorchConfig.cmake"; then
	abi=0
elif [[ ! -f "$libtorch/share/cmake/Torch/TorchConfig.cmake" ]] && nm -DC "$libtorch/lib/libc10.so" 2>/dev/null | grep -q 'std::basic_string' && ! nm -DC "$libtorch/lib/libc10.so" | grep -q '__cxx11'; then
	abi=0
fi

cuda_flags=""
if [[ -f "$libtorch/lib/libtorch_cuda.so" ]] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
	cuda_flags="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
	log "GPU found and libtorch has CUDA: linking libtorch_cuda"
fi

# --- 2. gotch's libtch ---------------------------------------------------------------------------
stamp="libtorch=$libtorch abi=$abi cuda=${cuda_flags:+yes} patch=free-result-slot,no-gc-ballast"
gotch=$cache/gotch-$gotch_version-$(printf '%s' "$stamp" | sha256sum | cut -c1-12)
if [[ -f "$gotch/.ddpmlab-stamp" && "$(cat "$gotch/.ddpmlab-stamp")" == "$stamp" ]]; then
	if grep -qs "=> $gotch\$" "$repo/go.work"; then
		log "gotch $gotch_version already configured ($stamp)"
		exit 0
	fi
	configured=yes # another checkout made the copy already: only this checkout's go.work is missing
else
	configured=no
fi
if [[ $configured == no ]]; then
src=$(cd "$repo" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/sugarme/gotch@$gotch_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -d "$src" ]] || die "could not download github.com/sugarme/gotch@$gotch_version"
rm -rf "$gotch.tmp"
mkdir -p "$cache"
cp -r "$src" "$gotch.tmp"
chmod -R u+w "$gotch.tmp"
rm -f "$gotch.tmp/libtch/lib.go"
cat >"$gotch.tmp/libtch/lib.go" <<GO
package libtch

// Generated by runner/scripts/setup-libtorch.sh for $stamp; edits are lost on the next setup.

// #cgo CFLAGS: -I\${SRCDIR} -O3 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-c++11-narrowing -g -Wno-sign-compare -Wno-unused-function
// #cgo CFLAGS: -D_GLIBCXX_USE_CXX11_ABI=$abi
// #cgo CFLAGS: -I$libtorch/include -I$libtorch/include/torch/csrc/api/include
// #cgo CXXFLAGS: -std=c++17 -I\${SRCDIR} -g -O3 -D_GLIBCXX_USE_CXX11_ABI=$abi
// #cgo CXXFLAGS: -I$libtorch/include -I$libtorch/include/torch/csrc/api/include
// #cgo LDFLAGS: -L$libtorch/lib -Wl,-rpath,$libtorch/lib -lstdc++ -ltorch_cpu -lc10 $cuda_flags
import "C"
GO
# gotch's generated ops malloc the slot that libtorch writes each result handle into, and never
# free it: about 32 bytes per op, some 30 KB per training step, which made a run's resident
# memory creep. Free the slot when the op returns (its value has been copied out by then).
sed -i -E 's/^([[:space:]]*)(ptr|ctensorPtr0) := \(\*lib\.Ctensor\)\(unsafe\.Pointer\(C\.malloc\(0\)\)\)$/&\n\1defer C.free(unsafe.Pointer(\2))/' \
	"$gotch.tmp/ts/tensor-generated.go"
# gotch gives every tensor a 100 kB Go "ballast" allocation (bigStruct) so that Go's GC notices
# tensors and runs their finalizers. ddpm frees every tensor itself (scope.drop), so the ballast
# only costs: a training step makes about 800 tensors, 80 MB of zeroed garbage, and the GC cycles
# it triggers run beside libtorch's OpenMP threads on the same cores (BENCHMARKS.md measures it).
# Drop the allocation; the finalizer stays as a safety net.
grep -q '^	x\.d = new(bigStruct)$' "$gotch.tmp/ts/tensor.go" || die "gotch's ts/tensor.go changed: the ballast patch no longer applies"
sed -i 's/^	x\.d = new(bigStruct)$/	\/\/ x.d = new(bigStruct): removed by ddpmlab setup (no GC ballast)/' "$gotch.tmp/ts/tensor.go"
echo "$stamp" >"$gotch.tmp/.ddpmlab-stamp"
gofmt -w "$gotch.tmp/libtch/lib.go"
rm -rf "$gotch"
mv "$gotch.tmp" "$gotch"
fi
cat >"$repo/go.work" <<GO
// Generated by runner/scripts/setup-libtorch.sh: uses the copy of gotch whose libtch is configured
// for this machine's libtorch. Not committed; delete it to undo.
go $(cd "$repo" && GOWORK=off go list -m -f '{{.GoVersion}}')

use .

replace github.com/sugarme/gotch $gotch_version => $gotch
GO
log "gotch $gotch_version configured for $libtorch (C++ ABI $abi) via go.work"
