#!/usr/bin/env python3
"""DeepSeek-V3's ablations at small scale (issue 15): load balancing and multi-token prediction.

Trains configs/quickstart.json's model (DeepSeek-V3 architecture, 8 routed experts top-2 + 1
shared, one MTP module) on the Debian documentation, every run with the same seed, data order
and steps (fresh processes, one tokenizer and token shards shared by all):
  - aux-free:  auxiliary-loss-free balancing only (V3 §2.1.2): "bias_update_speed" 0.001 (V3's γ
               for most of its training), "balance_alpha" 0;
  - aux loss:  the sequence-wise balance loss only (V3 eq. 17-20): bias frozen, "balance_alpha"
               0.001. V3's own α, 0.0001, is a complement to the bias and too weak to balance on
               its own; 0.001 is the loss-controlled baseline of the Loss-Free Balancing paper
               (Wang et al. 2024, the method V3 adopts) and V2-Lite's expert-level α1 (--alpha
               sets another);
  - neither:   both 0 (the router's biases stay 0, no balance term);
  - no MTP:    aux-free with "num_nextn_predict_layers" 0 (the three above keep V3's one MTP
               module, D = 1, λ = 0.3).
It prints two markdown tables:
  - balancing: the final validation loss (the main head's cross-entropy on held-out documents,
    what metrics.jsonl's "val_loss" holds with or without MTP: the trainer validates with the
    StepResult's `ce`, never the λ-weighted MTP term) and MaxVio = max_i load_i / mean load − 1
    per MoE layer per step, averaged over the main model's MoE layers (the MTP module's own
    MoE block left out), its mean over all steps and over the last 10% of them, and the
    training tokens/s of the median step (validations left out);
  - MTP vs none: the main head's validation loss and training CE (last 10% of steps) at equal
    steps, and the MTP head's acceptance as a draft of the next token: greedy `seek run
    --speculative` of the MTP run's final/ checkpoint on prompts from the held-out documents
    (32 tokens from a third and two thirds into each validation document, 24 tokens generated
    each, drafted/accepted summed over all prompts). The engine's first 3 decoding steps
    measure its costs without drafts, and 24 tokens keep a prompt's drafts at about 16 or
    fewer, so the adaptive rule (stop drafting after 16 drafts when it does not pay) rarely
    ends the drafting early.
Two plots, plain SVG written here: OUT/maxvio.svg (MaxVio over the steps of the three
balancing variants, a running mean over a few steps) and OUT/val_loss.svg (validation loss
curves of all four runs, y axis fitted to the later 80% of the steps).
Caveat: the no-MTP model has no MTP parameters, so its random init is not the others' (the
residual-output init std scales with 1/√(2·(layers + MTP modules)) and the random draws differ).

  bench/v3_ablations.py [--steps 600] [--out /tmp/seek-ablations] [--seek build/seek] [--alpha 0.001]
                        [--reuse]
"""
import html
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from array import array

from quickstart_runs import setup

GAMMA = 0.001  # the aux-free variant's bias update speed (V3's)


def flags(ap):
    ap.add_argument("--alpha", type=float, default=0.001,
                    help="balance_alpha of the aux-loss variant (default 0.001: the loss-controlled "
                         "baseline of Loss-Free Balancing)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the runs of OUT that finished with the same config (tables and plots "
                         "again, e.g. after a stop or with another --alpha)")


args, base = setup(__doc__, 600, "/tmp/seek-ablations", flags)
ALPHA = args.alpha
out = os.path.abspath(args.out)
os.makedirs(out, exist_ok=True)
steps = args.steps
n_layers = base["model"]["num_hidden_layers"]
eval_every = max(1, steps // 20)
tr = base["train"]
tokens_per_step = tr["batch_size"] * tr["seq_len"] * tr.get("grad_accum", 1)
VARIANTS = [  # name, label, train overrides, model overrides
    ("aux-free", "aux-free + MTP", {"bias_update_speed": GAMMA, "balance_alpha": 0.0}, {}),
    ("aux-loss", f"aux loss α={ALPHA:g} + MTP", {"bias_update_speed": 0.0, "balance_alpha": ALPHA}, {}),
    ("neither", "neither + MTP", {"bias_update_speed": 0.0, "balance_alpha": 0.0}, {}),
    ("no-mtp", "aux-free, no MTP", {"bias_update_speed": GAMMA, "balance_alpha": 0.0},
     {"num_nextn_predict_layers": 0}),
]

# ---- the runs ----
prep = os.path.join(out, "prep")  # tokenizer + shards, made by the first run, copied into the others
runs = {}
for name, label, train, model in VARIANTS:
    run = os.path.join(out, name)
    path = run + ".json"
    cfg = json.loads(json.dumps(base))
    cfg["model"].update(model)
    cfg["train"].update(train)
    cfg["train"].update({"steps": steps, "log_every": 1, "eval_every": eval_every, "save_every": steps})
    cfg["out"] = run
    wall = cpu = None
    if args.reuse and os.path.exists(os.path.join(run, "final")) and os.path.exists(path) and \
            json.load(open(path)) == cfg:
        print(f"reusing {run}", file=sys.stderr, flush=True)
    else:
        shutil.rmtree(run, ignore_errors=True)
        if os.path.exists(os.path.join(prep, "data", "train.bin")):
            for sub in ("data", "tokenizer"):
                shutil.copytree(os.path.join(prep, sub), os.path.join(run, sub))
        json.dump(cfg, open(path, "w"), indent=1)
        print(f"training {name} ({steps} steps) ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        child = subprocess.Popen([args.seek, "train", "--config", path, "--quiet"])
        _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time
        if status != 0:
            sys.exit(f"seek train ({name}) failed")
        wall, cpu = time.monotonic() - t0, usage.ru_utime + usage.ru_stime
    if not os.path.exists(os.path.join(prep, "data", "train.bin")):
        shutil.rmtree(prep, ignore_errors=True)
        for sub in ("data", "tokenizer"):
            shutil.copytree(os.path.join(run, sub), os.path.join(prep, sub))
    lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    train_lines = [m for m in lines if m.get("type") == "train"]
    maxvio = [(m["step"], sum(l["maxvio"] for l in m["moe"] if l["layer"] < n_layers) /
               max(1, sum(1 for l in m["moe"] if l["layer"] < n_layers))) for m in train_lines]
    tail = max(1, len(train_lines) // 10)
    # Training speed without the validations: the median step (tokens_per_s counts since the
    # start, validations included, so each step's time is the difference of tokens / tokens_per_s).
    elapsed = [m["tokens"] / m["tokens_per_s"] for m in train_lines]
    durations = sorted(b - a for a, b in zip([0.0] + elapsed, elapsed))
    runs[name] = {
        "label": label, "dir": run, "wall": wall, "cpu": cpu,
        "maxvio": maxvio,
        "mean_maxvio": sum(v for _, v in maxvio) / len(maxvio),
        "final_maxvio": sum(v for _, v in maxvio[-tail:]) / tail,
        "ce": sum(m["ce"] for m in train_lines[-tail:]) / tail,
        "val": [(m["step"], m["val_loss"]) for m in lines if m.get("type") == "val"],
        "tps": tokens_per_step / durations[len(durations) // 2],
    }
    if wall is not None:
        print(f"  {name}: {wall:.0f} s wall, {cpu:.0f} s CPU, {runs[name]['tps']:.0f} tokens/s (median step)",
              file=sys.stderr, flush=True)


# ---- MTP acceptance: greedy speculative decoding on held-out prompts ----
def held_out_prompts(run, model_dir, n_prompt=32):
    """Text of n_prompt-token windows a third and two thirds into each validation document."""
    blob = open(os.path.join(run, "data", "val.bin"), "rb").read()
    _, width, n, _ = struct.unpack("<IIQQ", blob[8:32])
    ids = array("H" if width == 2 else "I")
    ids.frombytes(blob[32:32 + n * width])
    mc = json.load(open(os.path.join(model_dir, "config.json")))
    bos, eos = mc.get("bos_token_id", 0), mc.get("eos_token_id", 1)
    docs, cur = [], []
    for t in ids:  # documents are BOS, tokens, EOS back to back
        if t == bos:
            cur = []
        elif t == eos:
            docs.append(cur)
        else:
            cur.append(t)
    prompts = []
    for d in docs:
        for k in (1, 2):
            start = len(d) * k // 3
            window = d[start:start + n_prompt]
            if len(window) < n_prompt:
                continue
            text = subprocess.run([args.seek, "tokenize", model_dir, "--decode"], input=json.dumps(window),
                                  capture_output=True, text=True, check=True).stdout
            prompts.append(text)
    return prompts


def acceptance(model_dir, prompts, gen=24):
    drafted = accepted = 0
    for p in prompts:
        # One thread: a model this small decodes no faster on two, and the draft is the same.
        r = subprocess.run([args.seek, "run", model_dir, "--raw", "-p", "-", "--speculative", "--temperature", "0",
                            "-n", str(gen), "--ignore-eos", "-t", "1"], input=p, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"seek run --speculative failed: {r.stderr.strip()}")
        m = re.search(r"MTP drafts (\d+)/(\d+) accepted", r.stderr)
        if m:
            accepted += int(m.group(1))
            drafted += int(m.group(2))
    return accepted, drafted


mtp = runs["aux-free"]
final = os.path.join(mtp["dir"], "final")
print("measuring the MTP head's acceptance (greedy, --speculative) ...", file=sys.stderr, flush=True)
prompts = held_out_prompts(mtp["dir"], final)
acc, drafted = acceptance(final, prompts)


# ---- plots (plain SVG) ----
def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    t = math.ceil(lo / step) * step
    ticks = []
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def svg_chart(path, title, xlabel, ylabel, series, ylim=None, markers=False):
    """series: [(label, [(x, y), ...])]; ylim: (lo, hi) or None for all points' range."""
    W, H, L, R, T, B = 760, 460, 70, 20, 40, 74
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x1 = x0 + 1
    y0, y1 = ylim if ylim else (min(ys), max(ys))
    pad = (y1 - y0) * 0.05 or 0.05
    y0, y1 = y0 - pad, y1 + pad
    px = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    py = lambda y: T + (y1 - y) / (y1 - y0) * (H - T - B)
    e = html.escape
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<clipPath id="plot"><rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}"/></clipPath>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{e(title)}</text>',
         f'<text x="{(L + W - R) / 2}" y="{H - B + 34}" text-anchor="middle">{e(xlabel)}</text>',
         f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 {(T + H - B) / 2})">'
         f'{e(ylabel)}</text>']
    for t in nice_ticks(x0, x1):
        s.append(f'<line x1="{px(t):.1f}" y1="{T}" x2="{px(t):.1f}" y2="{H - B}" stroke="#e4e4e4"/>')
        s.append(f'<text x="{px(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t:g}</text>')
    for t in nice_ticks(y0, y1):
        s.append(f'<line x1="{L}" y1="{py(t):.1f}" x2="{W - R}" y2="{py(t):.1f}" stroke="#e4e4e4"/>')
        s.append(f'<text x="{L - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    s.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#444"/>')
    lx = L
    for i, (label, pts) in enumerate(series):
        c = colors[i % len(colors)]
        poly = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        s.append(f'<polyline clip-path="url(#plot)" fill="none" stroke="{c}" stroke-width="1.6" points="{poly}"/>')
        if markers or len(pts) == 1:
            s += [f'<circle clip-path="url(#plot)" cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{c}"/>'
                  for x, y in pts]
        s.append(f'<line x1="{lx}" y1="{H - 12}" x2="{lx + 24}" y2="{H - 12}" stroke="{c}" stroke-width="2"/>')
        s.append(f'<text x="{lx + 30}" y="{H - 8}">{e(label)}</text>')
        lx += 48 + 7 * len(label)  # the legend: one row under the x axis
    s.append("</svg>")
    open(path, "w").write("\n".join(s) + "\n")


def running_mean(pts, w):
    return [(pts[i][0], sum(y for _, y in pts[max(0, i - w + 1):i + 1]) / (i + 1 - max(0, i - w + 1)))
            for i in range(len(pts))]


balancing = ("aux-free", "aux-loss", "neither")
w = max(1, steps // 60)
svg_chart(os.path.join(out, "maxvio.svg"),
          f"MaxVio per step, mean of the main MoE layers{f' (running mean over {w} steps)' if w > 1 else ''}",
          "step", "MaxVio", [(runs[n]["label"], running_mean(runs[n]["maxvio"], w)) for n in balancing])
cut = max(1, steps // 5)
late = [v for r in runs.values() for s, v in r["val"] if s >= cut]
svg_chart(os.path.join(out, "val_loss.svg"),
          f"Validation loss (main head CE), y axis fitted to steps ≥ {cut}", "step", "validation loss",
          [(r["label"], r["val"]) for r in runs.values()], ylim=(min(late), max(late)), markers=True)

# ---- tables ----
val = lambda r: r["val"][-1][1] if r["val"] else float("nan")
print(f"{steps} steps of configs/quickstart.json's model, batch {tr['batch_size']} x {tr['seq_len']} tokens, "
      f"seed {tr['seed']}, every run the same data order; validation loss = the main head's CE on "
      f"{tr['eval_batches']} held-out batches; MaxVio = mean over the {n_layers - base['model']['first_k_dense_replace']} "
      f"MoE layers of the main model")
print()
print("| balancing (all with one MTP module, λ = 0.3) | bias_update_speed | balance_alpha | val loss | "
      "mean MaxVio | final MaxVio (last 10%) | tokens/s (median step) |")
print("|---|---|---|---|---|---|---|")
for n in balancing:
    r = runs[n]
    t = VARIANTS[[v[0] for v in VARIANTS].index(n)][2]
    print(f"| {r['label']} | {t['bias_update_speed']:g} | {t['balance_alpha']:g} | {val(r):.4f} | "
          f"{r['mean_maxvio']:.3f} | {r['final_maxvio']:.3f} | {r['tps']:.0f} |")
print()
print("| MTP (aux-free balancing) | main-head val loss | main-head train CE (last 10%) | "
      "MTP draft acceptance (greedy, held-out prompts) | tokens/s (median step) |")
print("|---|---|---|---|---|")
for n in ("aux-free", "no-mtp"):
    r = runs[n]
    a = (f"{acc}/{drafted} = {100 * acc / drafted:.1f}% ({len(prompts)} prompts)" if drafted else "no drafts")
    print(f"| {'D = 1, λ = 0.3' if n == 'aux-free' else 'none'} | {val(r):.4f} | {r['ce']:.4f} | "
          f"{a if n == 'aux-free' else '–'} | {r['tps']:.0f} |")
print()
timed = [r for r in runs.values() if r["wall"] is not None]
print(f"plots: {os.path.join(out, 'maxvio.svg')}, {os.path.join(out, 'val_loss.svg')}" +
      (f"; {len(timed)} runs trained here in {sum(r['wall'] for r in timed):.0f} s wall, "
       f"{sum(r['cpu'] for r in timed):.0f} s CPU" if timed else ""))
