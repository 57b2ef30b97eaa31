#!/usr/bin/env python3
"""bench_torch.py: the PyTorch 2.1.2 eager twin of ddpm/bench_test.go.

The same SimpleUNet as ddpm/unet.go (ddpm_torch.py's, beside this file; base 64, time embedding
256: 1,577,921 parameters), the same training step (Ho et al. 2020, Algorithm 1, with Adam at
2e-4 on a batch of 128) and the same sampling costs (one ancestral DDPM step on 64 images, and a
whole DDIM-50 run), timed the way `go test -bench` with b.Loop times them: one untimed warm-up,
then iterations until at least --benchtime seconds have passed. Prints one JSON object.

    python bench_torch.py --threads 2 --benchtime 20 [--precision bf16] [--channels-last]
    python bench_torch.py --peak --threads 2 --benchtime 5 [--precision bf16]

With --precision bf16 the U-Net runs under torch.autocast("cpu", dtype=torch.bfloat16), the
twin of the Go side's mixed precision (ddpm/precision.go): fp32 weights and Adam state, the
network's output cast to fp32 before the loss and the sampler's update.

With --channels-last the model's weights and every input are laid out channels-last
(memory_format=torch.channels_last), the twin of the Go side's Compute.ChannelsLast.

--peak measures what this machine's libtorch reaches on the two ops that dominate the U-Net: a
2048×2048×2048 matmul and a 3×3 convolution, 64 → 64 channels on 28×28, batch 128 (forward only),
in GFLOP/s. It also counts the U-Net's FLOPs per image (2 per multiply-add, convolutions,
transposed convolutions and linear layers, from forward hooks on one image); a training step
costs about 3× a forward pass (the forward, then gradients for inputs and for weights). bench.sh
divides achieved training GFLOP/s by the matmul's figure, the machine's peak.

runner/scripts/bench.sh prepares a venv for it and runs it beside the Go benchmarks.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import time
import warnings

# The venv has no NumPy, which only the tensor <-> ndarray bridge needs.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ddpm_torch import SimpleUNet  # noqa: E402  (the model, beside this file)

T = 1000
BATCH = 128
SAMPLE_BATCH = 64
GUIDE_PARAMS = 1_577_921


class Schedule:
    """Linear β from 1e-4 to 0.02 over T steps, coefficients in float64 like ddpm/schedule.go."""

    def __init__(self):
        betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - betas, 0)
        self.sqrt_ac = self.alphas_cumprod.sqrt().float()
        self.sqrt_one_minus_ac = (1 - self.alphas_cumprod).sqrt().float()

    def ac(self, t):
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])


def timed(fn, benchtime, warmup=None):
    """One untimed warm-up call (of warmup, else fn), then calls of fn until benchtime seconds
    have passed: (calls, seconds)."""
    (warmup or fn)()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= benchtime:
            return n, elapsed


def autocast(precision):
    """The context the U-Net runs in: CPU autocast to bf16, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def layout(x, channels_last):
    """x in channels-last memory format when asked (the values stay the same)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def unet_flops_per_image(model):
    """FLOPs of one forward pass for one 1×28×28 image: 2 per multiply-add of every Conv2d,
    ConvTranspose2d and Linear (the elementwise ops, GroupNorm and SiLU are not counted)."""
    total = [0]

    def hook(mod, inputs, out):
        if isinstance(mod, torch.nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features * out.shape[0]
        elif isinstance(mod, torch.nn.Conv2d):
            kh, kw = mod.kernel_size
            total[0] += 2 * mod.in_channels // mod.groups * kh * kw * out.numel()
        elif isinstance(mod, torch.nn.ConvTranspose2d):
            # each input pixel scatters a kh×kw×cout patch: cin·kh·kw·cout multiply-adds per pixel
            kh, kw = mod.kernel_size
            x = inputs[0]
            total[0] += 2 * x.numel() * kh * kw * mod.out_channels // mod.groups

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def bench_peak(benchtime, precision):
    """GFLOP/s of a 2048³ matmul and of the 3×3 convolution that dominates the U-Net, in
    libtorch's default layout and channels-last; "peak_gflops" is the fastest of the three.
    One kernel alone is no peak: on an AVX-512 AMD EPYC MKL's fp32 matmul reaches 162-179
    GFLOP/s and oneDNN's NCHW convolution 98-312, where its channels-last one reaches 408-432
    (BENCHMARKS.md)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 2048, generator=g).to(dtype)
    b = torch.randn(2048, 2048, generator=g).to(dtype)
    n, secs = timed(lambda: torch.mm(a, b), benchtime)
    matmul = 2 * 2048 ** 3 * n / secs / 1e9
    x = torch.randn(128, 64, 28, 28, generator=g).to(dtype)
    w = torch.randn(64, 64, 3, 3, generator=g).to(dtype)
    with torch.no_grad():
        n, secs = timed(lambda: F.conv2d(x, w, padding=1), benchtime)
    conv_flops = 2 * 64 * 9 * 128 * 64 * 28 * 28  # 2 per multiply-add: cin·k² per output value
    conv = conv_flops * n / secs / 1e9
    x, w = layout(x, True), layout(w, True)
    with torch.no_grad():
        n, secs = timed(lambda: F.conv2d(x, w, padding=1), benchtime)
    conv_cl = conv_flops * n / secs / 1e9
    return {"matmul_2048_gflops": matmul, "conv3x3_64_28_b128_gflops": conv,
            "conv3x3_64_28_b128_channels_last_gflops": conv_cl, "peak_gflops": max(matmul, conv, conv_cl)}


def bench_train(model, sched, benchtime, precision, channels_last=False):
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(BATCH, 1, 28, 28, generator=g) * 2 - 1  # content does not change the cost
    step = [0]

    def train_step():
        torch.manual_seed(step[0])  # the Go trainer reseeds every step too
        step[0] += 1
        t = torch.randint(0, T, (BATCH,))
        noise = torch.randn_like(x0)
        xt = sched.sqrt_ac.index_select(0, t).view(-1, 1, 1, 1) * x0 + \
            sched.sqrt_one_minus_ac.index_select(0, t).view(-1, 1, 1, 1) * noise
        xt = layout(xt, channels_last)
        with autocast(precision):
            eps = model(xt, t)
        loss = F.mse_loss(eps.float(), noise)  # the loss in fp32
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"loss became {value}")
        opt.zero_grad()
        loss.backward()
        opt.step()

    n, secs = timed(train_step, benchtime)
    return {"steps": n, "seconds": secs, "s_per_step": secs / n, "images_per_s": BATCH * n / secs,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def predict(model, x, t, precision):
    """ε̂ in fp32 (the sampler's arithmetic stays fp32), the U-Net run in precision."""
    with autocast(precision):
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long))
    return eps.float()


def ddpm_step(model, sched, x, t, prev_t, last, precision):
    """Algorithm 2's step, with the same ops as ddpm/sampler_ddpm.go (predX0 included)."""
    eps = predict(model, x, t, precision)
    ac, ac_prev = sched.ac(t), sched.ac(prev_t)
    alpha = ac / ac_prev
    beta = 1 - alpha
    pred_x0 = (x - eps * math.sqrt(1 - ac)) * (1 / math.sqrt(ac))  # noqa: F841 (Go computes it too)
    mean = (x - eps * (beta / math.sqrt(1 - ac))) * (1 / math.sqrt(alpha))
    if last:
        return mean
    sigma = math.sqrt(beta * (1 - ac_prev) / (1 - ac))
    return mean + torch.randn_like(x) * sigma


def ddim_step(model, sched, x, t, prev_t, precision):
    """DDIM η = 0 (Song et al. 2021, eq. 12), as ddpm/sampler_ddim.go."""
    eps = predict(model, x, t, precision)
    ac, ac_prev = sched.ac(t), sched.ac(prev_t)
    pred_x0 = (x - eps * math.sqrt(1 - ac)) * (1 / math.sqrt(ac))
    return pred_x0 * math.sqrt(ac_prev) + eps * math.sqrt(max(0.0, 1 - ac_prev))


def bench_step(model, sched, benchtime, precision, channels_last=False):
    """One reverse DDPM step at t = 999 of the full 1000-step chain (noise added, as in all but
    the last) on 64 images, timed for benchtime seconds after a warm-up."""
    x_t = layout(torch.randn(SAMPLE_BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0)), channels_last)
    with torch.no_grad():
        n, secs = timed(lambda: ddpm_step(model, sched, x_t, T - 1, T - 2, False, precision), benchtime)
    return {"steps": n, "seconds": secs, "s_per_step": secs / n, "s_per_64img_1000steps": secs / n * T}


def bench_sample(model, sched, benchtime, precision, channels_last=False):
    x_t = layout(torch.randn(SAMPLE_BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0)), channels_last)
    step = bench_step(model, sched, benchtime, precision, channels_last)
    with torch.no_grad():
        # A whole DDIM-50 run with trailing spacing: t_i = round(T − i·T/k) − 1.
        k = 50
        steps = [(2 * T * (k - i) + k) // (2 * k) - 1 for i in range(k)]

        def ddim50():
            x = x_t
            for i, t in enumerate(steps):
                x = ddim_step(model, sched, x, t, steps[i + 1] if i + 1 < k else -1, precision)
            x.clamp(-1, 1).tolist()  # Sample copies the images to Go; do the same here

        # Warm up with one step, as the Go benchmark does with a 1-step sampler.
        runs, ddim_secs = timed(ddim50, benchtime, lambda: ddim_step(model, sched, x_t, T - 1, -1, precision))
    return {"ddpm_step": step,
            "ddim50": {"runs": runs, "seconds": ddim_secs, "s_per_64img": ddim_secs / runs}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--benchtime", type=float, default=20.0, help="seconds per measurement (after a warm-up)")
    ap.add_argument("--only", choices=["train", "sample", "step"],
                    help="run one benchmark only (step: the DDPM step alone, without DDIM-50)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="the U-Net's arithmetic: fp32, or bf16 under CPU autocast (default fp32)")
    ap.add_argument("--channels-last", action="store_true", help="weights and inputs in channels-last layout")
    ap.add_argument("--peak", action="store_true",
                    help="measure the matmul and convolution peak and the U-Net's FLOPs instead")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SimpleUNet()
    params = sum(p.numel() for p in model.parameters())
    if params != GUIDE_PARAMS:
        raise SystemExit(f"bench_torch.py: model has {params} parameters, ddpm/unet.go has {GUIDE_PARAMS}")
    sched = Schedule()
    out = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "params": params, "benchtime_s": args.benchtime, "precision": args.precision,
           "channels_last": args.channels_last}
    if args.peak:
        fwd = unet_flops_per_image(model)
        out["flops"] = {"forward_per_image": fwd, "train_step_per_image": 3 * fwd}
        out["peak"] = bench_peak(args.benchtime, args.precision)
        print(json.dumps(out))
        return
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.only in (None, "train"):
        out["train"] = bench_train(model, sched, args.benchtime, args.precision, args.channels_last)
    if args.only in (None, "sample"):
        out["sample"] = bench_sample(model, sched, args.benchtime, args.precision, args.channels_last)
    if args.only == "step":
        out["sample"] = {"ddpm_step": bench_step(model, sched, args.benchtime, args.precision, args.channels_last)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
