#!/usr/bin/env bash
# bench.sh: training and sampling speed of the guide's U-Net in Go (ddpm/bench_test.go, gotch on
# libtorch 2.1.2) and in PyTorch 2.1.2 eager (runner/scripts/bench_torch.py) on the same
# libtorch binaries, with the same thread count; prints a Markdown table with the ratios.
#
#   bash runner/scripts/bench.sh [--threads N] [--benchtime SECONDS] [--rounds R] [--precision P] [--layout L]
#   bash runner/scripts/bench.sh --pairs N [--torch-malloc runner] [--benchtime SECONDS]
#   bash runner/scripts/bench.sh --prepare-only   only make the venv (ddpm_torch.py's tests use it)
#   go tool task bench -- --rounds 2
#
# --threads    libtorch threads on both sides (default $DDPMLAB_THREADS, else nproc)
# --benchtime  seconds per measurement, after one untimed warm-up (default 20)
# --rounds     repetitions, interleaved Go, PyTorch, Go, PyTorch, … (default 1)
# --precision  fp32 (default) | bf16 | both: the U-Net's arithmetic on both sides (bf16: the Go
#              …BF16 benchmarks, ddpm/precision.go, and torch.autocast("cpu", torch.bfloat16));
#              both runs each round in fp32 then bf16 and adds Go bf16 / PyTorch fp32 ratios.
#              bf16 needs a CPU with avx512_bf16 or amx_bf16; elsewhere it is emulated and slow.
# --layout     nchw (default) | nhwc | both: libtorch's default layout, or channels-last
#              convolutions on both sides (Go: the …ChannelsLast benchmarks, Compute.ChannelsLast;
#              PyTorch: memory_format=torch.channels_last for the weights and inputs).
# --pairs      N > 0: only the DDPM step (64 images, fp32), in N alternating pairs of fresh
#              processes (Go, PyTorch, Go, …), each timed for --benchtime after a warm-up; prints
#              each pair and each side's range. Short pairs sample the VM's drift finely, which
#              is what a steadiness figure needs; no training, peak or DDIM-50.
# --torch-malloc  default (glibc's, as users run PyTorch) | runner: the PyTorch side gets the Go
#              side's malloc settings too, so the pair compares the same allocator.
#
# Before the rounds it measures the machine's peak once per precision (bench_torch.py --peak: a
# 2048³ matmul and the U-Net's dominant 3×3 convolution, NCHW and channels-last, in GFLOP/s) and
# the U-Net's FLOPs per image; the table gives each training figure as GFLOP/s and as a share of
# the peak, the fastest of the three kernels.
#
# The Go benchmarks run with the glibc malloc settings that the runner gives every libtorch child
# (GLIBC_TUNABLES; runner/executor/malloc.go says why), unless GLIBC_TUNABLES is set already.
#
# The raw outputs (go<r>-<precision>.txt, py<r>-<precision>.json, the load average at each start) are kept in
# $DDPMLAB_CACHE/bench-results/<date-time>/. BENCHMARKS.md has figures and caveats.
#
# The PyTorch side runs in a venv in $DDPMLAB_CACHE/bench-venv (default ~/.cache/ddpmlab),
# prepared once and idempotently: the torch 2.1.2 wheel that setup-libtorch.sh downloaded, its
# pure-Python dependencies, and the two small CUDA wheels (runtime, CUPTI) that libtorch_cpu.so
# links. The other CUDA libraries that `import torch` loads (cuBLAS, cuDNN, cuFFT, cuRAND,
# cuSPARSE, NCCL, NVTX: about 1.7 GB of wheels) are never called on the CPU, so stand-ins are
# built instead: tiny shared libraries with the same sonames and symbol versions that export
# every symbol torch's libraries import from them as an empty function. CUDA is therefore
# unusable in this venv (CUDA_VISIBLE_DEVICES is emptied for the run); it is for CPU timings only.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${DDPMLAB_CACHE:-$HOME/.cache/ddpmlab}
venv=$cache/bench-venv
torch_version=2.1.2
threads=${DDPMLAB_THREADS:-$(nproc)}
benchtime=20
rounds=1
precision=fp32
layout=nchw
prepare_only=false
pairs=0
torch_malloc=default
# runner/executor.MallocTunables (TestBenchUsesMallocTunables checks that they are the same).
malloc_tunables=glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=1073741824
go_tunables=${GLIBC_TUNABLES:-$malloc_tunables}
log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
	case $1 in
	--threads) threads=$2; shift 2 ;;
	--benchtime) benchtime=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--precision) precision=$2; shift 2 ;;
	--layout) layout=$2; shift 2 ;;
	--prepare-only) prepare_only=true; shift ;;
	--pairs) pairs=$2; shift 2 ;;
	--torch-malloc) torch_malloc=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got $threads"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got $rounds"
[[ $benchtime =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--benchtime must be a number of seconds, got $benchtime"
[[ $pairs =~ ^[0-9]+$ ]] || die "--pairs must be a whole number, got $pairs"
case $torch_malloc in
default) py_tunables=${GLIBC_TUNABLES:-} ;;
runner) py_tunables=$go_tunables ;;
*) die "--torch-malloc must be default or runner, got $torch_malloc" ;;
esac
case $precision in
fp32 | bf16) precisions=("$precision") ;;
both) precisions=(fp32 bf16) ;;
*) die "--precision must be fp32, bf16 or both, got $precision" ;;
esac
case $layout in
nchw | nhwc) layouts=("$layout") ;;
both) layouts=(nchw nhwc) ;;
*) die "--layout must be nchw, nhwc or both, got $layout" ;;
esac
if [[ $precision != fp32 ]] && ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
	log "warning: this CPU has neither avx512_bf16 nor amx_bf16: bf16 is emulated here, and its figures say nothing about bf16 hardware"
fi

# --- the PyTorch venv ----------------------------------------------------------------------------
# The stand-in libraries: soname, then the prefix of the unversioned symbols that belong to it.
stubs=(libcublas.so.12:cublas libcublasLt.so.12:cublasLt libcudnn.so.8:cudnn libcufft.so.11:cufft
	libcurand.so.10:curand libcusparse.so.12:cusparse libnccl.so.2:nccl libnvToolsExt.so.1:nvtx)

prepare_venv() {
	local py wheels=$cache/wheels work
	py=$(command -v python3.11 || true)
	[[ -n $py ]] || { python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && py=python3; }
	[[ -n $py ]] || die "the torch $torch_version wheel used here is for CPython 3.11; install python3.11"
	log "preparing the PyTorch $torch_version venv in $venv (once)"
	rm -rf "$venv"
	"$py" -m venv "$venv"
	mkdir -p "$wheels"
	"$venv/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$wheels" \
		"torch==$torch_version" "nvidia-cuda-runtime-cu12==12.1.105" "nvidia-cuda-cupti-cu12==12.1.105"
	"$venv/bin/pip" install --quiet --no-deps "$wheels"/torch-$torch_version-cp311-*.whl \
		"$wheels"/nvidia_cuda_runtime_cu12-12.1.105-*.whl "$wheels"/nvidia_cuda_cupti_cu12-12.1.105-*.whl
	# torch's pure-Python dependencies and theirs (mpmath, MarkupSafe), all named here; --no-deps
	# also keeps pip from complaining about the CUDA wheels torch pins and this venv does without.
	"$venv/bin/pip" install --quiet --no-deps filelock typing-extensions sympy networkx jinja2 fsspec mpmath MarkupSafe

	local torchdir lib so prefix syms
	torchdir=$("$venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')
	work=$(mktemp -d)
	for entry in "${stubs[@]}"; do
		so=${entry%%:*} prefix=${entry#*:}
		lib=${so%%.so*}
		# Symbols torch imports from this library: those versioned @soname, and unversioned ones
		# with its prefix (NCCL's and cuRAND's symbols carry no version).
		syms=$(for f in "$torchdir"/lib/*.so "$torchdir"/_C*.so; do nm -D --undefined-only "$f" | awk '{print $2}'; done |
			{ grep -E "@$so\$|^$prefix[A-Za-z0-9_]*\$" || true; } | sed 's/@.*//' | sort -u)
		for s in $syms; do echo "void $s(void) {}"; done >"$work/$lib.c"
		{
			echo "$so {"
			[[ -z $syms ]] || { echo " global:"; for s in $syms; do echo "  $s;"; done; }
			echo " local: *;"
			echo "};"
		} >"$work/$lib.map"
		gcc -shared -fPIC -Wl,-soname,"$so" -Wl,--version-script="$work/$lib.map" -o "$torchdir/lib/$so" "$work/$lib.c"
	done
	rm -rf "$work"
	CUDA_VISIBLE_DEVICES= "$venv/bin/python" -W ignore -c 'import torch; torch.ones(2) @ torch.ones(2)' ||
		die "import torch failed in $venv"
	echo "$torch_version" >"$venv/.ddpmlab-complete"
	log "venv ready"
}
[[ "$(cat "$venv/.ddpmlab-complete" 2>/dev/null)" == "$torch_version" ]] || prepare_venv
if $prepare_only; then log "venv ready in $venv"; exit 0; fi

# --- the runs -----------------------------------------------------------------------------------
# Raw outputs stay in $cache/bench-results/<time>/ (go<r>.txt, py<r>.json, the load averages).
out=$cache/bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
log "raw results in $out"
cd "$repo"
log "compiling the Go benchmarks"
go test -c -o "$out/ddpm.test" ./ddpm
export DDPMLAB_THREADS=$threads
if ((pairs > 0)); then
	for ((i = 1; i <= pairs; i++)); do
		log "pair $i/$pairs: Go DDPM step (benchtime ${benchtime}s, load $(cut -d' ' -f1-3 /proc/loadavg))"
		(cd ddpm && GLIBC_TUNABLES=$go_tunables "$out/ddpm.test" -test.run '^$' -test.bench '^BenchmarkSample64$' \
			-test.benchtime "${benchtime}s") | tee "$out/pair$i-go.txt" >&2
		log "pair $i/$pairs: PyTorch DDPM step (malloc: $torch_malloc)"
		GLIBC_TUNABLES=$py_tunables CUDA_VISIBLE_DEVICES= "$venv/bin/python" runner/scripts/bench_torch.py --only step \
			--threads "$threads" --benchtime "$benchtime" | tee "$out/pair$i-py.json" >&2
	done
	"$venv/bin/python" - "$out" "$pairs" "$torch_malloc" <<'PY'
import json, statistics, sys
out, pairs, malloc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
go, py = [], []
for i in range(1, pairs + 1):
    line = next(l for l in open(f"{out}/pair{i}-go.txt") if l.startswith("BenchmarkSample64"))
    go.append(float(line.split()[2]) / 1e9)
    py.append(json.load(open(f"{out}/pair{i}-py.json"))["sample"]["ddpm_step"]["s_per_step"])
print(f"\nDDPM step, 64 images, s per step; PyTorch malloc: {malloc}\n")
print("| pair | Go | PyTorch | Go speed / PyTorch speed |")
print("|---|---:|---:|---:|")
for i, (g, p) in enumerate(zip(go, py), 1):
    print(f"| {i} | {g:.3f} | {p:.3f} | {p / g:.2f}× |")
spread = lambda v: max(v) / min(v) - 1
print(f"\nGo {min(go):.3f}–{max(go):.3f} s (spread {spread(go):.0%}, median {statistics.median(go):.3f}); "
      f"PyTorch {min(py):.3f}–{max(py):.3f} s (spread {spread(py):.0%}, median {statistics.median(py):.3f}); "
      f"Go at least as fast in {sum(p >= g for g, p in zip(go, py))} of {pairs} pairs")
PY
	exit 0
fi
peak_time=$(awk -v b="$benchtime" 'BEGIN { print (b < 5 ? b : 5) }')
for p in "${precisions[@]}"; do
	log "peak, $p: matmul and 3x3 convolution (benchtime ${peak_time}s, load $(cut -d' ' -f1-3 /proc/loadavg))"
	CUDA_VISIBLE_DEVICES= "$venv/bin/python" runner/scripts/bench_torch.py --peak --threads "$threads" \
		--benchtime "$peak_time" --precision "$p" | tee "$out/peak-$p.json" >&2
done
for ((r = 1; r <= rounds; r++)); do
	for p in "${precisions[@]}"; do
		for l in "${layouts[@]}"; do
			# BenchmarkTrainStepBF16ChannelsLast is the bf16, channels-last twin of BenchmarkTrainStep.
			suffix=$([[ $p == bf16 ]] && echo BF16 || true)$([[ $l == nhwc ]] && echo ChannelsLast || true)
			pyflags=$([[ $l == nhwc ]] && echo --channels-last || true)
			v=$p-$l
			log "round $r/$rounds, $p $l: Go (threads $threads, benchtime ${benchtime}s, load $(cut -d' ' -f1-3 /proc/loadavg))"
			cut -d' ' -f1 /proc/loadavg >"$out/go$r-$v.load"
			(cd ddpm && GLIBC_TUNABLES=$go_tunables "$out/ddpm.test" -test.run '^$' -test.bench "^Benchmark(TrainStep|Sample64|Sample64DDIM50)$suffix\$" \
				-test.benchtime "${benchtime}s") | sed "s/^Benchmark\([A-Za-z0-9]*\)$suffix\b/Benchmark\1/" | tee "$out/go$r-$v.txt" >&2
			log "round $r/$rounds, $p $l: PyTorch (load $(cut -d' ' -f1-3 /proc/loadavg))"
			cut -d' ' -f1 /proc/loadavg >"$out/py$r-$v.load"
			CUDA_VISIBLE_DEVICES= "$venv/bin/python" runner/scripts/bench_torch.py --threads "$threads" --benchtime "$benchtime" \
				--precision "$p" $pyflags | tee "$out/py$r-$v.json" >&2
		done
	done
done

# --- the table ----------------------------------------------------------------------------------
"$venv/bin/python" - "$out" "$rounds" "$threads" "$benchtime" "${layouts[*]}" "${precisions[@]}" <<'PY'
import json, re, sys
out, rounds, threads, benchtime = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
layouts, precisions = sys.argv[5].split(), sys.argv[6:]

def go_metrics(path):
    m = {}
    for line in open(path):
        f = line.split()
        if f and f[0].startswith("Benchmark"):
            name = re.sub(r"-\d+$", "", f[0][len("Benchmark"):])
            m[name] = {f[i + 1]: float(f[i]) for i in range(2, len(f) - 1, 2)}
    return m

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
isa = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "no AVX2"
print(f"\n{cpu} ({isa}), {threads} libtorch threads, benchtime {benchtime}s, libtorch 2.1.2 on both sides\n")
peak, train_flops = {}, None
for prec in precisions:
    pk = json.load(open(f"{out}/peak-{prec}.json"))
    peak[prec] = pk["peak"]["peak_gflops"]
    train_flops = pk["flops"]["train_step_per_image"]
    print(f"- peak, {prec}: matmul 2048³ {pk['peak']['matmul_2048_gflops']:.1f} GFLOP/s, "
          f"3×3 conv 64→64 on 28×28 ×128 {pk['peak']['conv3x3_64_28_b128_gflops']:.1f} GFLOP/s, "
          f"the same channels-last {pk['peak']['conv3x3_64_28_b128_channels_last_gflops']:.1f} GFLOP/s")
print(f"- the U-Net: {pk['flops']['forward_per_image'] / 1e9:.3f} GFLOP per image forward, "
      f"≈ {train_flops / 1e9:.2f} per image for a training step (3× forward)\n")
print("| round | precision | layout | side | load avg (1 min) at start | train images/s | train GFLOP/s (% of peak) | train peak RSS MiB | DDPM s/step (64 img) | s per 64 img, 1000 DDPM steps | s per 64 img, DDIM-50 |")
print("|---|---|---|---|---|---|---|---|---|---|---|")

def ratio(go, py):
    return " | ".join(f"{a / b:.2f}×" for a, b in zip(go, py))

figures_by_round = {}
for r in range(1, rounds + 1):
    figures = figures_by_round[r] = {}
    for prec in precisions:
        for lay in layouts:
            v = f"{prec}-{lay}"
            g = go_metrics(f"{out}/go{r}-{v}.txt")
            p = json.load(open(f"{out}/py{r}-{v}.json"))
            gl, pl = open(f"{out}/go{r}-{v}.load").read().strip(), open(f"{out}/py{r}-{v}.load").read().strip()
            go = (g["TrainStep"]["images/s"], g["TrainStep"]["MiB-peak-rss"], g["Sample64"]["ns/op"] / 1e9,
                  g["Sample64"]["s/64img@1000steps"], g["Sample64DDIM50"]["s/64img"])
            py = (p["train"]["images_per_s"], p["train"]["peak_rss_mib"], p["sample"]["ddpm_step"]["s_per_step"],
                  p["sample"]["ddpm_step"]["s_per_64img_1000steps"], p["sample"]["ddim50"]["s_per_64img"])
            figures[v] = (go, py)
            for side, load, f in (("Go", gl, go), ("PyTorch", pl, py)):
                gflops = f[0] * train_flops / 1e9
                print(f"| {r} | {prec} | {lay} | {side} | {load} | {f[0]:.2f} | {gflops:.1f} ({100 * gflops / peak[prec]:.0f}%) "
                      f"| {f[1]:.0f} | {f[2]:.3f} | {f[3]:.0f} | {f[4]:.1f} |")
            g, q = ratio(go[:1], py[:1]), ratio(go[1:], py[1:])
            print(f"| {r} | {prec} | {lay} | Go/PyTorch | | {g} | | {q} |")
    for lay in layouts:  # the bf16 targets are against PyTorch's fp32 in its default layout
        if f"fp32-nchw" in figures and f"bf16-{lay}" in figures:
            go, py = figures[f"bf16-{lay}"][0], figures["fp32-nchw"][1]
            print(f"| {r} | bf16/fp32 | {lay} | Go bf16 / PyTorch fp32 nchw | | {ratio(go[:1], py[:1])} | | {ratio(go[1:], py[1:])} |")
print("\nGo/PyTorch: above 1 is Go faster for images/s, Go slower (or larger) for seconds and memory.")

# The issue's targets read across rounds: Go at least as fast as PyTorch in every round, and a
# round-to-round spread (max/min - 1) no wider than PyTorch's. Speed ratios here are all "Go's
# speed over PyTorch's" (above 1 is Go faster), for seconds as for images/s.
measures = (("train images/s", 0, True), ("DDPM s/step", 2, False), ("DDIM-50 s", 4, False))
print(f"\nAcross the {rounds} round(s): each side's range and spread (max/min − 1), and Go's speed over PyTorch's by round.\n")
print("| precision | layout | measure | Go range (spread) | PyTorch range (spread) | Go speed / PyTorch speed, by round | rounds Go ≥ 1.0× |")
print("|---|---|---|---|---|---|---|")
for prec in precisions:
    for lay in layouts:
        v = f"{prec}-{lay}"
        rows = [figures_by_round[r][v] for r in range(1, rounds + 1)]
        for name, i, higher_better in measures:
            go, py = [g[i] for g, _ in rows], [p[i] for _, p in rows]
            speed = [a / b if higher_better else b / a for a, b in zip(go, py)]
            span = lambda xs: f"{min(xs):.3g}–{max(xs):.3g} ({100 * (max(xs) / min(xs) - 1):.0f}%)"
            print(f"| {prec} | {lay} | {name} | {span(go)} | {span(py)} | {', '.join(f'{x:.2f}×' for x in speed)} "
                  f"| {sum(x >= 1 for x in speed)} of {len(speed)} |")
PY
