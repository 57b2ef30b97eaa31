#!/usr/bin/env python3
"""bench_torch.py: the PyTorch 2.1.2 eager twin of ddpm/bench_test.go.

The same SimpleUNet as ddpm/unet.go (base 64, time embedding 256: 1,577,921 parameters), the
same training step (Ho et al. 2020, Algorithm 1, with Adam at 2e-4 on a batch of 128) and the
same sampling costs (one ancestral DDPM step on 64 images, and a whole DDIM-50 run), timed the
way `go test -bench` with b.Loop times them: one untimed warm-up, then iterations until at least
--benchtime seconds have passed. Prints one JSON object.

    python bench_torch.py --threads 2 --benchtime 20

runner/scripts/bench.sh prepares a venv for it and runs it beside the Go benchmarks.
"""

import argparse
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
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

T = 1000
BATCH = 128
SAMPLE_BATCH = 64
GUIDE_PARAMS = 1_577_921


class Block(nn.Module):
    """DownBlock (and bottleneck): SiLU(GN(conv1 x)) + Linear(SiLU(emb)), then SiLU(GN(conv2 h))."""

    def __init__(self, cin, cout, emb_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, cout)
        self.time_mlp = nn.Linear(emb_dim, cout)

    def forward(self, x, emb):
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.time_mlp(F.silu(emb))[:, :, None, None]
        return F.silu(self.norm2(self.conv2(h)))


class UpBlock(nn.Module):
    """UpBlock: ConvTranspose2d(2, stride 2), concatenate the skip on channels, then a Block."""

    def __init__(self, cx, cskip, cout, emb_dim):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(cx, cx, 2, stride=2)
        self.block = Block(cx + cskip, cout, emb_dim)

    def forward(self, x, skip, emb):
        return self.block(torch.cat([self.upsample(x), skip], 1), emb)


class SimpleUNet(nn.Module):
    """ddpm/unet.go's UNet: 28 -> 14 -> 7 -> 14 -> 28 with skips, time embedding in every block."""

    def __init__(self, c=64, d=256, image_channels=1):
        super().__init__()
        self.d = d
        self.time_mlp1 = nn.Linear(d, d)
        self.time_mlp2 = nn.Linear(d, d)
        self.init_conv = nn.Conv2d(image_channels, c, 3, padding=1)
        self.down1 = Block(c, c, d)
        self.down2 = Block(c, 2 * c, d)
        self.bottleneck = Block(2 * c, 2 * c, d)
        self.up1 = UpBlock(2 * c, 2 * c, 2 * c, d)
        self.up2 = UpBlock(2 * c, c, c, d)
        self.final_conv = nn.Conv2d(c, image_channels, 1)

    def embedding(self, t):
        # emb[:, i] = sin(t·ω_i), emb[:, half+i] = cos(t·ω_i), ω_i = 10000^(−i/(half−1))
        half = self.d // 2
        omega = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        angles = t.float()[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], 1)

    def forward(self, x, t):
        emb = self.time_mlp2(F.silu(self.time_mlp1(self.embedding(t))))
        h = self.init_conv(x)
        skip1 = self.down1(h, emb)
        skip2 = self.down2(F.max_pool2d(skip1, 2), emb)
        h = self.bottleneck(F.max_pool2d(skip2, 2), emb)
        h = self.up1(h, skip2, emb)
        h = self.up2(h, skip1, emb)
        return self.final_conv(h)


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


def bench_train(model, sched, benchtime):
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
        loss = F.mse_loss(model(xt, t), noise)
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"loss became {value}")
        opt.zero_grad()
        loss.backward()
        opt.step()

    n, secs = timed(train_step, benchtime)
    return {"steps": n, "seconds": secs, "s_per_step": secs / n, "images_per_s": BATCH * n / secs,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def ddpm_step(model, sched, x, t, prev_t, last):
    """Algorithm 2's step, with the same ops as ddpm/sampler_ddpm.go (predX0 included)."""
    eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long))
    ac, ac_prev = sched.ac(t), sched.ac(prev_t)
    alpha = ac / ac_prev
    beta = 1 - alpha
    pred_x0 = (x - eps * math.sqrt(1 - ac)) * (1 / math.sqrt(ac))  # noqa: F841 (Go computes it too)
    mean = (x - eps * (beta / math.sqrt(1 - ac))) * (1 / math.sqrt(alpha))
    if last:
        return mean
    sigma = math.sqrt(beta * (1 - ac_prev) / (1 - ac))
    return mean + torch.randn_like(x) * sigma


def ddim_step(model, sched, x, t, prev_t):
    """DDIM η = 0 (Song et al. 2021, eq. 12), as ddpm/sampler_ddim.go."""
    eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long))
    ac, ac_prev = sched.ac(t), sched.ac(prev_t)
    pred_x0 = (x - eps * math.sqrt(1 - ac)) * (1 / math.sqrt(ac))
    return pred_x0 * math.sqrt(ac_prev) + eps * math.sqrt(max(0.0, 1 - ac_prev))


def bench_sample(model, sched, benchtime):
    x_t = torch.randn(SAMPLE_BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # One reverse step at t = 999 of the full 1000-step chain (noise added, as in all but the last).
        n, secs = timed(lambda: ddpm_step(model, sched, x_t, T - 1, T - 2, False), benchtime)
        per_step = secs / n
        # A whole DDIM-50 run with trailing spacing: t_i = round(T − i·T/k) − 1.
        k = 50
        steps = [(2 * T * (k - i) + k) // (2 * k) - 1 for i in range(k)]

        def ddim50():
            x = x_t
            for i, t in enumerate(steps):
                x = ddim_step(model, sched, x, t, steps[i + 1] if i + 1 < k else -1)
            x.clamp(-1, 1).tolist()  # Sample copies the images to Go; do the same here

        # Warm up with one step, as the Go benchmark does with a 1-step sampler.
        runs, ddim_secs = timed(ddim50, benchtime, lambda: ddim_step(model, sched, x_t, T - 1, -1))
    return {"ddpm_step": {"steps": n, "seconds": secs, "s_per_step": per_step,
                          "s_per_64img_1000steps": per_step * T},
            "ddim50": {"runs": runs, "seconds": ddim_secs, "s_per_64img": ddim_secs / runs}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--benchtime", type=float, default=20.0, help="seconds per measurement (after a warm-up)")
    ap.add_argument("--only", choices=["train", "sample"], help="run one benchmark only")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SimpleUNet()
    params = sum(p.numel() for p in model.parameters())
    if params != GUIDE_PARAMS:
        raise SystemExit(f"bench_torch.py: model has {params} parameters, ddpm/unet.go has {GUIDE_PARAMS}")
    sched = Schedule()
    out = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "params": params, "benchtime_s": args.benchtime}
    if args.only in (None, "train"):
        out["train"] = bench_train(model, sched, args.benchtime)
    if args.only in (None, "sample"):
        out["sample"] = bench_sample(model, sched, args.benchtime)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
