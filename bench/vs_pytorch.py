#!/usr/bin/env python3
"""Training tokens/s of Seek against PyTorch on the CPU, the same model and step in both.

The anchor of issue 15 (Seek's training throughput ≥ 3× PyTorch CPU training, fp32, OpenBLAS).

The same model, batch and optimizer step in both: the DeepSeek-V3 architecture as Seek trains it
(src/model: RMSNorm; MLA with q/kv LoRA and decoupled interleaved RoPE; first_k_dense_replace
dense SwiGLU layers, then DeepSeekMoE layers with sigmoid scores, noaux_tc group-limited top-k
where the correction bias only steers the choice, norm_topk_prob, routed_scaling_factor and shared
experts; the MTP module(s): eh_proj over [enorm(emb) | hnorm(h)], one block, a head norm and the
shared, untied head, loss CE + mtp_lambda · mean CE_k), written here in PyTorch, fp32, and trained
with torch.optim.AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only, lr 1e-3
constant) after clip_grad_norm_(1.0), on torch.set_num_threads(--threads) threads. The routed
experts run the way an efficient implementation does: each expert over its own tokens only
(index_select, then index_add_ of the weighted outputs), not every expert over every token.

The configurations are bench/bench_train.cpp's, read from its source (make_config and its batch
B × S): "tiny" (configs/quickstart.json's geometry with a 4096-token vocabulary, batch 8 × 256
instead of the quickstart's 2048 and 16 × 128) and "small" (59.4M parameters). Random tokens, a new
batch every step, as bench_train draws them. Seek's side is build/bench/bench_train CONFIG --steps
N --precision P (its first step untimed, as here the --warmup steps) for each of
--seek-precisions (fp32: the same arithmetic as PyTorch's; bf16: Seek's mixed precision, fp32
master weights, the linear layers' GEMMs on the bf16 dot units). They alternate, PyTorch then
Seek, for --rounds rounds in one run (this machine's speed drifts), and the table gives the
medians.

Before timing, the PyTorch model is checked against Seek's, per configuration: `seek train` runs
one step of the same geometry on a token file (batch 2 × 32, init_std 0.1, a learning rate too
small to move a weight) and writes a checkpoint. Its tensors (names and shapes; less the MTP
module's embed_tokens/shared_head.head copies, which Seek trains tied to the main ones) must be
exactly this model's parameters plus the routers' correction biases, the count must match
bench_train's printed one, and this model, loaded with those weights, must reproduce the step's
logged CE, MTP CE (to 1e-3) and gradient norm before clipping (to 1e-3 relative). Any difference
stops the script before the benchmark.

PyTorch is Debian's python3-torch (bookworm: 1.13.1, on OpenBLAS): when `import torch` fails the
script runs itself again under /usr/bin/python3, and if that has no torch either it installs the
package with apt-get (as root; never pip).

  bench/vs_pytorch.py [--steps 5] [--rounds 3] [--configs tiny,small] [--warmup 1]
                      [--seek-precisions fp32,bf16]
                      [--threads NPROC] [--seek-bench build/bench/bench_train] [--seek build/seek]
"""
import argparse
import json
import math
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round (each side)")
    ap.add_argument("--rounds", type=int, default=3, help="PyTorch/Seek alternations")
    ap.add_argument("--configs", default="tiny,small", help="bench_train configurations, comma-separated")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed PyTorch steps per round (bench_train leaves its first step out)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="PyTorch threads, and OMP_NUM_THREADS for Seek")
    ap.add_argument("--seek-precisions", default="fp32,bf16",
                    help="Seek's training precisions to time against PyTorch's fp32, comma-separated")
    ap.add_argument("--seek-bench", default=os.path.join(ROOT, "build", "bench", "bench_train"))
    ap.add_argument("--seek", default=os.path.join(ROOT, "build", "seek"),
                    help="the seek binary (writes the checkpoint the model is checked against)")
    args = ap.parse_args()
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    args.seek_precisions = [p.strip() for p in args.seek_precisions.split(",") if p.strip()]
    for p in args.seek_precisions:
        if p not in ("fp32", "bf16", "fp8"):
            ap.error(f"unknown precision {p!r} (fp32, bf16 or fp8)")
    for c in args.configs:
        if c not in ("tiny", "small"):
            ap.error(f"unknown configuration {c!r} (bench_train has tiny and small)")
    if args.steps < 1 or args.rounds < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps, --rounds and --threads must be >= 1, --warmup >= 0")
    return args


def import_torch():
    """Debian's torch: this interpreter's, else /usr/bin/python3's (re-exec), else apt-get."""
    try:
        import torch
        return torch
    except ImportError:
        pass
    me = os.path.realpath(sys.executable)
    if me != os.path.realpath(SYSTEM_PYTHON) and not os.environ.get("VS_PYTORCH_REEXEC"):
        has = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True).returncode == 0
        if not has:
            install_torch()
        print(f"vs_pytorch: {sys.executable} has no torch; running under {SYSTEM_PYTHON}",
              file=sys.stderr, flush=True)
        os.environ["VS_PYTORCH_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    install_torch()
    import importlib
    importlib.invalidate_caches()
    import torch
    return torch


def install_torch():
    if os.geteuid() != 0:
        sys.exit("vs_pytorch: python3-torch is not installed and this is not root "
                 "(apt-get install python3-torch)")
    print("vs_pytorch: installing Debian's python3-torch", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "python3-torch"], check=True, env=env)


# ---------------------------------------------------------------------------------------------
# The configurations: bench_train.cpp's make_config() and its batch, read from the source.

# ModelConfig's defaults (src/model/config.h) for the fields make_config() leaves alone.
CONFIG_DEFAULTS = {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "moe_layer_freq": 1,
                   "tie_word_embeddings": False, "q_lora_rank": 0, "n_group": 1, "topk_group": 1,
                   "n_shared_experts": 0, "norm_topk_prob": False, "routed_scaling_factor": 1.0,
                   "num_nextn_predict_layers": 0, "max_position_embeddings": 4096}
ENUMS = {"ScoringFunc::Sigmoid": "sigmoid", "ScoringFunc::Softmax": "softmax",
         "TopkMethod::NoauxTc": "noaux_tc", "TopkMethod::Greedy": "greedy",
         "TopkMethod::GroupLimitedGreedy": "group_limited_greedy"}


def bench_train_configs():
    src = open(os.path.join(ROOT, "bench", "bench_train.cpp")).read()
    m = re.search(r"model::ModelConfig make_config\(.*?\{(.*?)\n  return c;", src, re.S)
    b = re.search(r"const int64_t B = (\d+), S = (\d+);", src)
    if not m or not b:
        sys.exit("vs_pytorch: cannot find make_config() or the batch in bench/bench_train.cpp")
    body = m.group(1)
    common, _, rest = body.partition('if (name == "tiny") {')
    tiny, _, small = rest.partition("} else {")

    def fields(text):
        out = {}
        for k, v in re.findall(r"\bc\.(\w+)\s*=\s*([^;]+);", text):
            v = v.strip()
            if v.startswith("model::"):
                out[k] = ENUMS[v[len("model::"):]]
            elif v in ("true", "false"):
                out[k] = v == "true"
            elif v.startswith("{"):
                out[k] = [int(x) for x in v.strip("{}").split(",") if x.strip()]
            elif v.startswith('"'):
                out[k] = v.strip('"')
            else:
                out[k] = float(v) if any(ch in v for ch in ".eE") else int(v)
        return out

    base = dict(CONFIG_DEFAULTS, **fields(common))
    cfgs = {"tiny": dict(base, **fields(tiny)), "small": dict(base, **fields(small))}
    need = ("vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
            "num_hidden_layers", "num_attention_heads", "kv_lora_rank", "qk_nope_head_dim",
            "qk_rope_head_dim", "v_head_dim", "n_routed_experts", "num_experts_per_tok",
            "first_k_dense_replace", "num_nextn_predict_layers", "scoring_func", "topk_method")
    for name, c in cfgs.items():
        miss = [k for k in need if k not in c]
        if miss:
            sys.exit(f"vs_pytorch: bench_train.cpp's {name} config has no {', '.join(miss)}")
    return cfgs, int(b.group(1)), int(b.group(2))


# bench_train runs forward_backward with ObjectiveOptions' defaults and AdamW with AdamWConfig's
# (src/model/transformer.h, src/train/optimizer.h), at lr 1e-3, params initialized with std 0.02.
MTP_LAMBDA, LR, BETAS, EPS, WEIGHT_DECAY, GRAD_CLIP, INIT_STD = 0.3, 1e-3, (0.9, 0.95), 1e-8, 0.1, 1.0, 0.02


# ---------------------------------------------------------------------------------------------
# The model in PyTorch. Module names follow the Hugging Face layout Seek writes, so that the
# state_dict's names are the checkpoint's.

def build_model(torch, cfg):
    nn, F = torch.nn, torch.nn.functional
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    L, D = cfg["num_hidden_layers"], cfg["num_nextn_predict_layers"]
    eps = cfg["rms_norm_eps"]

    class RMSNorm(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight

    def linear(n_in, n_out, residual_out=False):
        lin = nn.Linear(n_in, n_out, bias=False)
        lin.residual_out = residual_out  # o_proj, down_proj: init std scaled by 1/√(2·(L + D))
        return lin

    class Rope:
        """Interleaved RoPE (pairs 2i, 2i+1), float32 angles pos · θ^(−2i/d_R), as Seek's."""

        def __init__(self, n):
            dr = cfg["qk_rope_head_dim"]
            i = torch.arange(dr // 2, dtype=torch.float32)
            freqs = 1.0 / torch.pow(torch.tensor(float(cfg["rope_theta"])), 2 * i / dr)
            angle = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]
            self.cos, self.sin = torch.cos(angle), torch.sin(angle)  # [n, d_R/2]

        def __call__(self, x):  # [..., S, d_R]
            S = x.shape[-2]
            c, s = self.cos[:S], self.sin[:S]
            a, b = x.unflatten(-1, (-1, 2)).unbind(-1)
            return torch.stack((a * c - b * s, a * s + b * c), -1).flatten(-2)

    class MLA(nn.Module):
        def __init__(self):
            super().__init__()
            nh = cfg["num_attention_heads"]
            self.nh, self.dh, self.dr = nh, cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
            self.dv, self.dc = cfg["v_head_dim"], cfg["kv_lora_rank"]
            qd = self.dh + self.dr
            self.scale = qd ** -0.5
            r = cfg["q_lora_rank"]
            if r > 0:
                self.q_a_proj = linear(H, r)
                self.q_a_layernorm = RMSNorm(r)
                self.q_b_proj = linear(r, nh * qd)
            else:
                self.q_proj = linear(H, nh * qd)
            self.kv_a_proj_with_mqa = linear(H, self.dc + self.dr)
            self.kv_a_layernorm = RMSNorm(self.dc)
            self.kv_b_proj = linear(self.dc, nh * (self.dh + self.dv))
            self.o_proj = linear(nh * self.dv, H, residual_out=True)

        def forward(self, x, rope, mask):  # x [B, S, H]
            B, S, _ = x.shape
            nh, dh, dr, dv, dc = self.nh, self.dh, self.dr, self.dv, self.dc
            if hasattr(self, "q_a_proj"):
                q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
            else:
                q = self.q_proj(x)
            q = q.view(B, S, nh, dh + dr).transpose(1, 2)  # [B, nh, S, d_h + d_R]
            q = torch.cat((q[..., :dh], rope(q[..., dh:])), -1)
            kv = self.kv_a_proj_with_mqa(x)  # [B, S, d_c + d_R]
            k_pe = rope(kv[..., dc:]).unsqueeze(1)  # one rope key for every head [B, 1, S, d_R]
            kvf = self.kv_b_proj(self.kv_a_layernorm(kv[..., :dc]))  # the latent expanded
            kvf = kvf.view(B, S, nh, dh + dv).transpose(1, 2)  # [B, nh, S, d_h + d_v]
            k = torch.cat((kvf[..., :dh], k_pe.expand(B, nh, S, dr)), -1)
            s = torch.matmul(q, k.transpose(-1, -2)) * self.scale + mask[:S, :S]
            o = torch.matmul(torch.softmax(s, -1), kvf[..., dh:])  # [B, nh, S, d_v]
            return self.o_proj(o.transpose(1, 2).reshape(B, S, nh * dv))

    class FFN(nn.Module):  # SwiGLU
        def __init__(self, inter):
            super().__init__()
            self.gate_proj = linear(H, inter)
            self.up_proj = linear(H, inter)
            self.down_proj = linear(inter, H, residual_out=True)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Router(nn.Module):
        def __init__(self):
            super().__init__()
            E = cfg["n_routed_experts"]
            self.weight = nn.Parameter(torch.empty(E, H))
            if cfg["topk_method"] == "noaux_tc":  # not trained by gradients (nor updated here:
                self.register_buffer("e_score_correction_bias", torch.zeros(E))  # bench_train)

        def forward(self, x):  # x [T, H] → chosen experts [T, k] and their weights [T, k]
            E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
            G, noaux = cfg["n_group"], cfg["topk_method"] == "noaux_tc"
            logits = F.linear(x, self.weight)
            s = torch.sigmoid(logits) if cfg["scoring_func"] == "sigmoid" else torch.softmax(logits, -1)
            with torch.no_grad():  # the choice: not differentiated; the bias steers only it
                sel = s + self.e_score_correction_bias if noaux else s.clone()
                if cfg["topk_method"] != "greedy" and G > 1:
                    g = sel.view(-1, G, E // G)
                    gs = g.topk(2, -1).values.sum(-1) if noaux else g.max(-1).values  # [T, G]
                    keep = gs.topk(cfg["topk_group"], -1).indices
                    allowed = torch.zeros_like(gs, dtype=torch.bool).scatter_(1, keep, True)
                    sel = sel.masked_fill(~allowed.repeat_interleave(E // G, 1), float("-inf"))
                idx = sel.topk(k, -1).indices
            w = s.gather(1, idx)
            if cfg["norm_topk_prob"]:
                w = w / (w.sum(-1, keepdim=True) + 1e-20)
            return idx, w * cfg["routed_scaling_factor"]

    class MoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = Router()
            self.experts = nn.ModuleList(FFN(cfg["moe_intermediate_size"])
                                         for _ in range(cfg["n_routed_experts"]))
            if cfg["n_shared_experts"] > 0:  # the shared experts fused into one FFN, as Seek's
                self.shared_experts = FFN(cfg["n_shared_experts"] * cfg["moe_intermediate_size"])

        def forward(self, x):  # [B, S, H]
            shape = x.shape
            x = x.reshape(-1, H)
            idx, w = self.gate(x)
            k = idx.shape[1]
            flat = idx.reshape(-1)
            order = torch.argsort(flat, stable=True)  # (token, slot) pairs by expert, in token order
            counts = torch.bincount(flat, minlength=len(self.experts)).tolist()
            token_of, w_sorted = order // k, w.reshape(-1)[order]
            out = self.shared_experts(x) if hasattr(self, "shared_experts") else torch.zeros_like(x)
            start = 0
            for e, n in enumerate(counts):
                if n == 0:
                    continue
                rows = token_of[start:start + n]
                y = self.experts[e](x.index_select(0, rows)) * w_sorted[start:start + n, None]
                out.index_add_(0, rows, y)
                start += n
            return out.view(shape)

    def is_moe(layer):
        return (cfg["n_routed_experts"] > 0 and layer >= cfg["first_k_dense_replace"]
                and layer % cfg["moe_layer_freq"] == 0)

    class Block(nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.input_layernorm = RMSNorm(H)
            self.self_attn = MLA()
            self.post_attention_layernorm = RMSNorm(H)
            self.mlp = MoE() if is_moe(layer) else FFN(cfg["intermediate_size"])

        def forward(self, h, rope, mask):
            h = h + self.self_attn(self.input_layernorm(h), rope, mask)
            return h + self.mlp(self.post_attention_layernorm(h))

    class SharedHead(nn.Module):  # its .head is the main lm_head (tied, as Seek trains it)
        def __init__(self):
            super().__init__()
            self.norm = RMSNorm(H)

    class MTPLayer(Block):
        def __init__(self, layer):
            super().__init__(layer)
            self.enorm = RMSNorm(H)
            self.hnorm = RMSNorm(H)
            self.eh_proj = linear(2 * H, H)
            self.shared_head = SharedHead()

        def forward(self, h_prev, emb, rope, mask):
            h = self.eh_proj(torch.cat((self.enorm(emb), self.hnorm(h_prev)), -1))
            return super().forward(h, rope, mask)

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(V, H)
            self.layers = nn.ModuleList([Block(l) for l in range(L)] +
                                        [MTPLayer(L + k) for k in range(D)])
            self.norm = RMSNorm(H)

    class DeepSeekV3(nn.Module):
        def __init__(self, max_len):
            super().__init__()
            self.model = Inner()
            self.lm_head = linear(H, V)
            self.rope = Rope(max_len)
            self.mask = torch.full((max_len, max_len), float("-inf")).triu(1)

        def forward(self, tokens):  # [B, S + 1]: inputs tokens[:, :S], targets tokens[:, 1:]
            S = tokens.shape[1] - 1
            emb = self.model.embed_tokens(tokens)
            h = emb[:, :S]
            for l in range(L):
                h = self.model.layers[l](h, self.rope, self.mask)

            def ce(hidden, norm, targets):
                logits = self.lm_head(norm(hidden))
                return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))

            main = ce(h, self.model.norm, tokens[:, 1:])
            # MTP module k at position j (n = S − k − 1 positions): the previous depth's hidden
            # state at j and the embedding of token j + k + 1, predicting token j + k + 2.
            mtp = []
            for k in range(D):
                n = S - k - 1
                m = self.model.layers[L + k]
                h = m(h[:, :n], emb[:, k + 1:k + 1 + n], self.rope, self.mask)
                mtp.append(ce(h, m.shared_head.norm, tokens[:, k + 2:k + 2 + n]))
            loss = main + (MTP_LAMBDA / D) * sum(mtp) if D else main
            return loss, main, mtp

    return DeepSeekV3


def init_params(torch, model, cfg):
    """Seek's Params::init: matrices N(0, 0.02), o_proj/down_proj scaled by 1/√(2·(L + D)),
    norm gains 1, router biases 0."""
    out_scale = 1.0 / math.sqrt(2.0 * (cfg["num_hidden_layers"] + cfg["num_nextn_predict_layers"]))
    with torch.no_grad():
        for mod in model.modules():
            for name, p in mod.named_parameters(recurse=False):
                if p.dim() == 1:
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, INIT_STD * (out_scale if getattr(mod, "residual_out", False) else 1.0))


def tensor_table(model):
    """name → shape of what a checkpoint of this model holds: parameters and the router biases."""
    t = {n: list(p.shape) for n, p in model.named_parameters()}
    t.update({n: list(b.shape) for n, b in model.named_buffers() if n.endswith("e_score_correction_bias")})
    return t


# ---------------------------------------------------------------------------------------------
# Seek's side.

def seek_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads))


CHECK_B, CHECK_S, CHECK_STD = 2, 32, 0.1


def seek_checkpoint(args, cfg, tmp):
    """One `seek train` step of this geometry on a token file, at a learning rate too small to
    move a weight (1e-30) and with the routers' bias updates off, so that the checkpoint it
    writes holds the weights its logged first loss was computed with. init_std 0.1 rather than
    0.02 makes that loss depend on every part of the model (not just ≈ ln vocab). Returns the
    checkpoint's tensors (name → (shape, float32 bytes); the MTP modules' copies of the embedding
    and head left out), the first metrics line and the batch's token rows [B, S + 1]."""
    B, S = CHECK_B, CHECK_S
    rng = random.Random(1)
    ids = [rng.randrange(cfg["vocab_size"]) for _ in range(B * S + 1)]
    with open(os.path.join(tmp, "ids.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(ids)}I", *ids))
    model = {k: v for k, v in cfg.items() if k != "eos_token_ids"}
    conf = {"model": model, "data": {"tokens": os.path.join(tmp, "ids.bin")},
            "train": {"seq_len": S, "batch_size": B, "steps": 1, "lr": 1e-30, "schedule": "constant",
                      "warmup": 0, "bias_update_speed": 0, "balance_alpha": 0, "init_std": CHECK_STD,
                      "log_every": 1, "save_every": 1000, "eval_every": 1000},
            "out": os.path.join(tmp, "run")}
    path = os.path.join(tmp, "train.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    subprocess.run([args.seek, "train", "--config", path, "--quiet"], check=True,
                   env=seek_env(args.threads), stdout=subprocess.DEVNULL)
    with open(os.path.join(tmp, "run", "final", "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    L = cfg["num_hidden_layers"]
    tied = {f"model.layers.{L + k}.{t}" for k in range(cfg["num_nextn_predict_layers"])
            for t in ("embed_tokens.weight", "shared_head.head.weight")}
    tensors = {}
    for name, h in header.items():
        if name in tied:
            continue
        if h["dtype"] != "F32":
            sys.exit(f"vs_pytorch: Seek's checkpoint holds {name} as {h['dtype']}, expected F32")
        a, b = h["data_offsets"]
        tensors[name] = (h["shape"], data[a:b])
    with open(os.path.join(tmp, "run", "metrics.jsonl")) as f:
        first = next(m for m in map(json.loads, f) if m.get("type") == "train")
    # The sequential loader's first batch: sequence j is ids[j·S, (j + 1)·S + 1).
    rows = [ids[j * S:(j + 1) * S + 1] for j in range(B)]
    return tensors, first, rows


def check_same_model(torch, DeepSeekV3, model, cfg, args, name):
    """Seek's checkpoint against the PyTorch model: the same tensors (names, shapes), the same
    parameter count, and on Seek's weights and batch the same first losses and gradient norm
    (before clipping). Returns the count."""
    with tempfile.TemporaryDirectory(prefix="vs-pytorch-") as tmp:
        seek, first, rows = seek_checkpoint(args, cfg, tmp)
    seek_shapes = {n: s for n, (s, _) in seek.items()}
    ours = tensor_table(model)
    n_torch = sum(p.numel() for p in model.parameters())
    n_bias = sum(math.prod(s) for n, s in ours.items() if n.endswith("e_score_correction_bias"))
    n_seek = sum(math.prod(s) for s in seek_shapes.values())
    print(f"{name}: parameters: PyTorch {n_torch} + {n_bias} router biases (a buffer) = {n_torch + n_bias}; "
          f"Seek {n_seek} ({len(seek)} tensors of its checkpoint, less the MTP module's tied copies)")
    if ours != seek_shapes:
        for n in sorted(set(ours) | set(seek_shapes)):
            if ours.get(n) != seek_shapes.get(n):
                print(f"  {n}: PyTorch {ours.get(n)}  Seek {seek_shapes.get(n)}")
        sys.exit(f"vs_pytorch: {name}: the PyTorch model's tensors are not Seek's (above)")
    if n_torch + n_bias != n_seek:
        sys.exit(f"vs_pytorch: {name}: parameter counts differ")
    # Seek's weights in a PyTorch model, Seek's batch: the losses must agree.
    check = DeepSeekV3(CHECK_S)
    state = {n: torch.frombuffer(bytearray(b), dtype=torch.float32).view(s) for n, (s, b) in seek.items()}
    check.load_state_dict(state, strict=True)
    loss, ce, ce_mtp = check(torch.tensor(rows))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(check.parameters()), float("inf")).item()
    ours_ce = [ce.item()] + [c.item() for c in ce_mtp]
    seek_ce = [first["ce"]] + list(first.get("ce_mtp", []))
    worst = max(abs(a - b) for a, b in zip(ours_ce, seek_ce))
    rel = abs(norm - first["grad_norm"]) / first["grad_norm"]
    fmt = lambda v: " / ".join(f"{x:.6f}" for x in v)
    print(f"{name}: on Seek's weights (init_std {CHECK_STD}) and batch ({CHECK_B} x {CHECK_S}): "
          f"CE / MTP CE Seek {fmt(seek_ce)}, PyTorch {fmt(ours_ce)} (|diff| {worst:.1e}; ln V = "
          f"{math.log(cfg['vocab_size']):.4f}); gradient norm Seek {first['grad_norm']:.6f}, "
          f"PyTorch {norm:.6f} (rel. diff {rel:.1e})")
    if len(ours_ce) != len(seek_ce) or worst > 1e-3 or rel > 1e-3:
        sys.exit(f"vs_pytorch: {name}: the PyTorch model's losses or gradients are not Seek's")
    return n_seek


def run_seek_bench(args, name, precision):
    r = subprocess.run([args.seek_bench, name, "--steps", str(args.steps), "--precision", precision],
                       capture_output=True,
                       text=True, env=seek_env(args.threads))
    m = re.search(r"([\d.]+)M params.*?([\d.]+) tokens/s", r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"vs_pytorch: {args.seek_bench} {name} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return float(m.group(2)), float(m.group(1))


# ---------------------------------------------------------------------------------------------

def main():
    args = parse_args()
    torch = import_torch()
    torch.set_num_threads(args.threads)
    for p in (args.seek_bench, args.seek):
        if not os.access(p, os.X_OK):
            sys.exit(f"vs_pytorch: {p} is not built")
    cfgs, B, S = bench_train_configs()
    # Which BLAS torch's fp32 GEMMs land in (Debian: libblas.so.3 → OpenBLAS through alternatives).
    torch.randn(64, 64) @ torch.randn(64, 64)
    blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if re.search(r"blas", l, re.I)})
    print(f"PyTorch {torch.__version__} ({sys.executable}), {torch.get_num_threads()} threads, "
          f"BLAS {', '.join(os.path.realpath(b) for b in blas) or 'unknown'}")
    print(f"bench_train's configurations (bench/bench_train.cpp), batch {B} x {S} random tokens, fp32, "
          f"AdamW lr {LR}, MTP lambda {MTP_LAMBDA}; {args.steps} timed steps per round, {args.rounds} rounds")

    results = {}
    for name in args.configs:
        cfg = cfgs[name]
        DeepSeekV3 = build_model(torch, cfg)
        torch.manual_seed(1)
        model = DeepSeekV3(S)
        init_params(torch, model, cfg)
        n_seek = check_same_model(torch, DeepSeekV3, model, cfg, args, name)

        params = [p for p in model.parameters()]
        opt = torch.optim.AdamW(
            [{"params": [p for p in params if p.dim() == 2], "weight_decay": WEIGHT_DECAY},
             {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}],
            lr=LR, betas=BETAS, eps=EPS, foreach=True)
        gen = torch.Generator().manual_seed(1)

        def step():
            tokens = torch.randint(0, cfg["vocab_size"], (B, S + 1), generator=gen)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, ce, ce_mtp = model(tokens)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            opt.step()
            return time.perf_counter() - t0, ce.item(), [c.item() for c in ce_mtp]

        rounds = []
        for r in range(args.rounds):
            for i in range(args.warmup):
                _, ce, ce_mtp = step()
                if r == 0 and i == 0:
                    print(f"{name}: PyTorch's first CE / MTP CE at init_std {INIT_STD}: "
                          f"{' / '.join(f'{c:.4f}' for c in [ce] + ce_mtp)}")
            t = sum(step()[0] for _ in range(args.steps))
            tps_torch = B * S * args.steps / t
            tps_seek = {}
            for prec in args.seek_precisions:
                tps_seek[prec], m_params = run_seek_bench(args, name, prec)
            if r == 0:
                print(f"{name}: bench_train reports {m_params}M parameters")
                if abs(m_params * 1e6 - n_seek) > 0.051e6:
                    sys.exit(f"vs_pytorch: {name}: bench_train's {m_params}M parameters are not this "
                             f"geometry's {n_seek} (bench_train.cpp and the binary disagree?)")
            print(f"{name} round {r + 1}: PyTorch {tps_torch:.0f} tokens/s, " + ", ".join(
                f"Seek {p} {t:.0f} tokens/s ({t / tps_torch:.2f}x)" for p, t in tps_seek.items()), flush=True)
            rounds.append((tps_torch, tps_seek))
        results[name] = (n_seek, rounds)
        del model, opt

    print(f"\nTraining tokens/s, medians of {args.rounds} rounds ({args.steps} timed steps each), "
          f"{args.threads} threads, batch {B} x {S}, PyTorch fp32:\n")
    print("| config | parameters | PyTorch fp32 tokens/s | Seek precision | Seek tokens/s | Seek / PyTorch | per round |")
    print("|---|---|---|---|---|---|---|")
    for name, (n, rounds) in results.items():
        pt = statistics.median(r[0] for r in rounds)
        for prec in args.seek_precisions:
            sk = statistics.median(r[1][prec] for r in rounds)
            ratios = sorted(r[1][prec] / r[0] for r in rounds)
            span = f"{ratios[0]:.2f}-{ratios[-1]:.2f}x" if len(ratios) > 1 else f"{ratios[0]:.2f}x"
            print(f"| {name} | {n / 1e6:.2f}M | {pt:.0f} | {prec} | {sk:.0f} | {sk / pt:.2f}x | {span} |")


if __name__ == "__main__":
    main()
