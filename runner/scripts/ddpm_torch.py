#!/usr/bin/env python3
"""ddpm_torch.py: ddpmlab's SimpleUNet in PyTorch, a loader for `runner export` folders, and DDPM sampling.

The model is ddpm/unet.go's, layer for layer, with the same parameter names and shapes, so the
model.safetensors that `runner export HASH` writes loads with a strict load_state_dict. Needs only
torch (no NumPy, no safetensors package, no Pillow): the safetensors reader and the PNG writer
are the few lines below.

    python runner/scripts/ddpm_torch.py sample EXPORT_DIR --out grid.png [--num-images 64]
        [--steps 1000] [--seed 0] [--class 7] [--guidance 0] [--no-clip] [--noise x_T.safetensors]
        [--save-tensors x_0.safetensors]
    python runner/scripts/ddpm_torch.py predict EXPORT_DIR INPUTS.safetensors OUT.safetensors

As a library (put runner/scripts on sys.path):

    import ddpm_torch
    model, config = ddpm_torch.load_export("runs/<hash>/export/ema")
    eps = model(x_t, t)                  # x_t (B,1,28,28) float32, t (B,) int64 in 0..T-1
    schedule = ddpm_torch.Schedule.from_config(config)
    x0 = ddpm_torch.sample(model, schedule, torch.randn(16, 1, 28, 28), steps=50)

Notation (Ho et al. 2020): β_t betas, α_t = 1 − β_t, ᾱ_t = ∏_{s≤t} α_s alphas_cumprod, with
t = 0..T−1 here (the paper's 1..T) and ᾱ_{−1} = 1.
"""

import argparse
import json
import math
import os
import struct
import warnings
import zlib

# The benchmark's venv has no NumPy, which only the tensor <-> ndarray bridge needs.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# config.json's "format" and the versions of it this module reads.
EXPORT_FORMAT = "ddpmlab.SimpleUNet"
EXPORT_VERSIONS = (1,)
GROUPS = 8  # GroupNorm(8, C), as in the guide

# ---------------------------------------------------------------------------------------------
# The model: ddpm/unet.go.


class Block(nn.Module):
    """DownBlock (and bottleneck): h = SiLU(GN(conv1 x)) + Linear(SiLU(emb)); SiLU(GN(conv2 h))."""

    def __init__(self, cin, cout, emb_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(GROUPS, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(GROUPS, cout)
        self.time_mlp = nn.Linear(emb_dim, cout)

    def forward(self, x, emb):
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.time_mlp(F.silu(emb))[:, :, None, None]  # broadcast over H×W
        return F.silu(self.norm2(self.conv2(h)))


class UpBlock(Block):
    """UpBlock: ConvTranspose2d(2, stride 2), concatenate the skip on channels, then a Block.

    It is a Block with an upsampling layer, as in Go (upBlock embeds block), so its parameters
    are up1.conv1.weight, …, up1.upsample.weight, not up1.block.conv1.weight.
    """

    def __init__(self, cx, cskip, cout, emb_dim):
        super().__init__(cx + cskip, cout, emb_dim)
        self.upsample = nn.ConvTranspose2d(cx, cx, 2, stride=2)

    def forward(self, x, skip, emb):
        return super().forward(torch.cat([self.upsample(x), skip], 1), emb)


def sinusoidal_embedding(t, dim):
    """(B,) timesteps to (B, dim): emb[:, i] = sin(t·ω_i), emb[:, dim/2+i] = cos(t·ω_i), with
    ω_i = 10000^(−i/(dim/2−1)) (Vaswani et al. 2017, as used by Ho et al.). ω is computed in
    float64 and rounded to float32, as ddpm/unet.go does: at t ≈ 1000 a float32 ω would move the
    angles by 1e-4."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64)
    omega = torch.exp(-math.log(10000) * i / max(half - 1, 1)).float().to(t.device)
    angles = t.float()[:, None] * omega[None, :]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], 1)


class SimpleUNet(nn.Module):
    """ddpm/unet.go's UNet: 28 → 14 → 7 → 14 → 28 with skips, the time embedding in every block.

    base_channels C (64 in the guide), time_emb_dim D (256), num_classes K > 0 for a
    class-conditional model, whose class_embedding has K+1 rows: row K is the "no class" (∅)
    used by classifier-free guidance.
    """

    def __init__(self, base_channels=64, time_emb_dim=256, image_channels=1, num_classes=0):
        super().__init__()
        c, d = base_channels, time_emb_dim
        if c < GROUPS or c % GROUPS:
            raise ValueError(f"base_channels must be a positive multiple of {GROUPS}, got {c}")
        if d < 2 or d % 2:
            raise ValueError(f"time_emb_dim must be even and >= 2, got {d}")
        self.time_emb_dim, self.num_classes = d, num_classes
        self.time_mlp1 = nn.Linear(d, d)
        self.time_mlp2 = nn.Linear(d, d)
        if num_classes > 0:
            self.class_embedding = nn.Embedding(num_classes + 1, d)
        self.init_conv = nn.Conv2d(image_channels, c, 3, padding=1)
        self.down1 = Block(c, c, d)
        self.down2 = Block(c, 2 * c, d)
        self.bottleneck = Block(2 * c, 2 * c, d)
        self.up1 = UpBlock(2 * c, 2 * c, 2 * c, d)  # 7 → 14, concatenate skip2 (2C)
        self.up2 = UpBlock(2 * c, c, c, d)  # 14 → 28, concatenate skip1 (C)
        self.final_conv = nn.Conv2d(c, image_channels, 1)

    def forward(self, x, t, y=None):
        """ε̂ = ε_θ(x_t, t[, y]): x (B,C,H,W) float, t (B,) int64, y (B,) int64 class labels of a
        conditional model (num_classes, or y=None, means "no class")."""
        emb = self.time_mlp2(F.silu(self.time_mlp1(sinusoidal_embedding(t, self.time_emb_dim))))
        if self.num_classes > 0:
            if y is None:
                y = torch.full_like(t, self.num_classes)
            emb = emb + self.class_embedding(y)  # the guide's class conditioning
        h = self.init_conv(x)  # (B, C, 28, 28)
        skip1 = self.down1(h, emb)  # (B, C, 28, 28)
        skip2 = self.down2(F.max_pool2d(skip1, 2), emb)  # (B, 2C, 14, 14)
        h = self.bottleneck(F.max_pool2d(skip2, 2), emb)  # (B, 2C, 7, 7)
        h = self.up1(h, skip2, emb)  # (B, 2C, 14, 14)
        h = self.up2(h, skip1, emb)  # (B, C, 28, 28)
        return self.final_conv(h)  # (B, 1, 28, 28)

    # The [model] keys of a run config that this class implements, with the value at which each
    # leaves the guide's architecture unchanged (None: any value is implemented). A config with
    # another key, or one of these at another value, is refused rather than silently misread;
    # supporting a new key of ddpm/unet.go means adding it here and to __init__.
    MODEL_KEYS = {"base_channels": None, "time_emb_dim": None, "conditional": None}

    @classmethod
    def from_config(cls, config):
        """Builds the model that config.json (a `runner export` folder's) describes."""
        if config.get("format") != EXPORT_FORMAT or config.get("version") not in EXPORT_VERSIONS:
            raise ValueError(f"not a {EXPORT_FORMAT} export (version {EXPORT_VERSIONS}): "
                             f"format {config.get('format')!r}, version {config.get('version')!r}")
        model = config["model"]
        for key, value in model.items():
            if key not in cls.MODEL_KEYS:
                raise ValueError(f"config.json: model.{key} = {value!r} is not implemented by ddpm_torch.py "
                                 f"(it knows {', '.join(sorted(cls.MODEL_KEYS))}); update it to match ddpm/unet.go")
            want = cls.MODEL_KEYS[key]
            if want is not None and value != want:
                raise ValueError(f"config.json: model.{key} = {value!r} is not implemented by ddpm_torch.py "
                                 f"(only {want!r})")
        return cls(base_channels=model["base_channels"], time_emb_dim=model["time_emb_dim"],
                   image_channels=config["image_channels"], num_classes=config["num_classes"])


# ---------------------------------------------------------------------------------------------
# safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the raw
# little-endian, row-major tensor data at the header's data_offsets.

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a safetensors file (the same dict that
    safetensors.torch.load_file gives, for those who have that package)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        buf = bytearray(data[start:end])  # a writable copy: torch.frombuffer warns on bytes
        tensors[name] = torch.frombuffer(buf, dtype=dtype).reshape(info["shape"]) if buf else \
            torch.zeros(info["shape"], dtype=dtype)
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (float32, float64, int64 or int32) as a safetensors file."""
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        blob = bytes(t.flatten().view(torch.uint8).tolist())  # little-endian on every host torch runs on
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def load_export(folder, device="cpu"):
    """Loads a `runner export` folder: returns (SimpleUNet in eval mode, config.json as a dict)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    model = SimpleUNet.from_config(config)
    state, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    model.load_state_dict(state, strict=True)  # same names and shapes, or an error naming them
    return model.to(device).eval(), config


# ---------------------------------------------------------------------------------------------
# Sampling: ddpm/schedule.go, ddpm/sampler.go and ddpm/sampler_ddpm.go.


class Schedule:
    """β over T steps and ᾱ, in float64 like ddpm/schedule.go: "linear" (Ho et al. 2020: β from
    beta_start to beta_end) or "cosine" (Nichol & Dhariwal 2021, eq. 17, s = 0.008)."""

    def __init__(self, kind="linear", timesteps=1000, beta_start=1e-4, beta_end=0.02):
        T = timesteps
        if kind == "linear":
            betas = [beta_start + (beta_end - beta_start) * t / (T - 1) if T > 1 else beta_start for t in range(T)]
        elif kind == "cosine":
            def f(t):  # f(t) = cos²(((t/T) + s)/(1 + s) · π/2)
                return math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2
            betas = [min(1 - f(t + 1) / f(t), 0.999) for t in range(T)]  # β_{t+1} = 1 − ᾱ_{t+1}/ᾱ_t
        else:
            raise ValueError(f"unknown noise schedule {kind!r} (want 'linear' or 'cosine')")
        self.kind, self.T, self.betas = kind, T, betas
        self.alphas_cumprod, prod = [], 1.0
        for beta in betas:
            prod *= 1 - beta  # ᾱ_t = ᾱ_{t−1}·α_t
            self.alphas_cumprod.append(prod)

    # The [diffusion] keys this sampler implements (see SimpleUNet.MODEL_KEYS): a run that sets
    # another (a v-predicting network, say) is refused rather than sampled wrongly.
    DIFFUSION_KEYS = {"timesteps", "schedule", "beta_start", "beta_end"}

    @classmethod
    def from_config(cls, config):
        d = config["diffusion"]
        for key in sorted(set(d) - cls.DIFFUSION_KEYS):
            raise ValueError(f"config.json: diffusion.{key} = {d[key]!r} is not implemented by ddpm_torch.py's "
                             f"sampler (it knows {', '.join(sorted(cls.DIFFUSION_KEYS))})")
        return cls(d["schedule"], d["timesteps"], d["beta_start"], d["beta_end"])

    def alpha_cumprod(self, t):
        """ᾱ_t, with ᾱ_{−1} = 1 for the step that lands on x_0."""
        return 1.0 if t < 0 else self.alphas_cumprod[t]


def spaced_timesteps(T, k):
    """k of 0..T−1, descending, with trailing spacing (Lin et al. 2024, table 2):
    t_i = round(T − i·T/k) − 1, as ddpm.SpacedTimesteps."""
    if not 1 <= k <= T:
        raise ValueError(f"sampling steps must be in 1..{T}, got {k}")
    return [(2 * T * (k - i) + k) // (2 * k) - 1 for i in range(k)]


@torch.no_grad()
def guided_noise(model, x, t, labels, w):
    """ε̂ with classifier-free guidance (Ho & Salimans 2022, eq. 6): (1 + w)·ε_θ(x,t,c) − w·ε_θ(x,t,∅)."""
    if labels is None or w == 0:
        return model(x, t, labels)
    null = torch.full_like(labels, model.num_classes)
    return model(x, t, labels) * (1 + w) - model(x, t, null) * w


@torch.no_grad()
def sample(model, schedule, x_T, steps=0, clip_x0=True, labels=None, guidance=0.0):
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) from x_T over `steps` timesteps (0 = all
    T; fewer are respaced as in Nichol & Dhariwal 2021, §4), drawing z from torch's global
    generator, as ddpm/sampler_ddpm.go does from libtorch's. Returns x_0 clamped to [-1, 1]."""
    timesteps = spaced_timesteps(schedule.T, steps or schedule.T)
    x = x_T
    for i, t in enumerate(timesteps):
        prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        ac, ac_prev = schedule.alpha_cumprod(t), schedule.alpha_cumprod(prev_t)
        alpha = ac / ac_prev  # α_t (respaced)
        beta = 1 - alpha  # β_t (respaced)
        eps = guided_noise(model, x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), labels, guidance)
        # 1. predicted x_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t (eq. 15), clipped to [-1, 1] if asked
        pred_x0 = (x - eps * math.sqrt(1 - ac)) * (1 / math.sqrt(ac))
        if clip_x0:
            pred_x0 = pred_x0.clamp(-1, 1)
        # 2. the posterior mean μ̃(x_t, x̂_0) = √ᾱ_{t−1}β_t/(1 − ᾱ_t)·x̂_0 + √α_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t (eq. 7)
        mean = pred_x0 * (math.sqrt(ac_prev) * beta / (1 - ac)) + x * (math.sqrt(alpha) * (1 - ac_prev) / (1 - ac))
        if i == len(timesteps) - 1:
            x = mean  # 3. the last step returns the mean (Algorithm 2, line 3: z = 0 at t = 1)
        else:
            sigma = math.sqrt(beta * (1 - ac_prev) / (1 - ac))  # σ_t² = β̃_t (eq. 7)
            x = mean + torch.randn(x.shape, device=x.device) * sigma
    return x.clamp(-1, 1)


def write_grid_png(path, images, cols=None, pad=2):
    """Writes images (B,1,H,W) in [-1, 1] as one 8-bit grayscale PNG grid, `cols` per row."""
    b, _, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    gh, gw = rows * (h + pad) + pad, cols * (w + pad) + pad
    grid = torch.zeros(gh, gw, dtype=torch.uint8)
    pixels = ((images[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    for k in range(b):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = pixels[k]
    raw = b"".join(b"\x00" + bytes(row.tolist()) for row in grid)  # filter type 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", gw, gh, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


# ---------------------------------------------------------------------------------------------
# The command line.


def cmd_sample(args):
    model, config = load_export(args.export_dir)
    schedule = Schedule.from_config(config)
    size = config["image_size"]
    shape = (args.num_images, config["image_channels"], size, size)
    if args.noise:
        x_T = read_safetensors(args.noise)[0]["x_T"].float()
        if tuple(x_T.shape) != shape:
            raise SystemExit(f"ddpm_torch.py: {args.noise}: x_T has shape {tuple(x_T.shape)}, want {shape}")
    else:
        x_T = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
    labels = None
    if args.class_ is not None:
        if config["num_classes"] == 0:
            raise SystemExit("ddpm_torch.py: --class needs a class-conditional export (num_classes > 0)")
        if not 0 <= args.class_ < config["num_classes"]:
            raise SystemExit(f"ddpm_torch.py: --class must be 0..{config['num_classes'] - 1}, got {args.class_}")
        labels = torch.full((args.num_images,), args.class_, dtype=torch.long)
    torch.manual_seed(args.seed)  # the per-step noise z, as `runner sample` seeds libtorch
    x0 = sample(model, schedule, x_T, args.steps, not args.no_clip, labels, args.guidance)
    write_grid_png(args.out, x0)
    if args.save_tensors:
        write_safetensors(args.save_tensors, {"x_0": x0})
    print(f"samples: {args.out} ({args.num_images} images, {args.steps or schedule.T} DDPM steps, "
          f"{config['weights']} weights of run {config['run'][:12]})")


def cmd_predict(args):
    """ε̂ on given inputs: x (B,C,H,W), t (B,) and, for conditional models, y (B,); t and y may be
    stored as floats holding integers."""
    model, _ = load_export(args.export_dir)
    inputs, _ = read_safetensors(args.inputs)
    y = inputs["y"].long() if "y" in inputs else None
    with torch.no_grad():
        eps = model(inputs["x"].float(), inputs["t"].long(), y)
    write_safetensors(args.out, {"eps": eps})
    print(f"eps: {args.out} {tuple(eps.shape)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="draw a grid of samples with DDPM (Algorithm 2)")
    s.add_argument("export_dir", help="a folder written by `runner export HASH`")
    s.add_argument("--out", default="grid.png", help="output PNG")
    s.add_argument("--num-images", type=int, default=64)
    s.add_argument("--steps", type=int, default=0, help="sampling steps, 1..T (0 = all T)")
    s.add_argument("--seed", type=int, default=0, help="seeds x_T and the per-step noise")
    s.add_argument("--class", dest="class_", type=int, help="conditional models: the class of every image")
    s.add_argument("--guidance", type=float, default=0.0, help="conditional models: classifier-free guidance w")
    s.add_argument("--no-clip", action="store_true", help="do not clip the predicted x_0 to [-1, 1]")
    s.add_argument("--noise", help="take x_T from this safetensors file (tensor x_T) instead of the seed")
    s.add_argument("--save-tensors", help="also write x_0 (float32) to this safetensors file")
    s.set_defaults(fn=cmd_sample)
    p = sub.add_parser("predict", help="run the network on the inputs x, t[, y] of a safetensors file")
    p.add_argument("export_dir")
    p.add_argument("inputs")
    p.add_argument("out", help="output safetensors file with eps")
    p.set_defaults(fn=cmd_predict)
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("DDPMLAB_THREADS", "0")) or torch.get_num_threads())
    args.fn(args)


if __name__ == "__main__":
    main()
