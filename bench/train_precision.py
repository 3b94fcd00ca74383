#!/usr/bin/env python3
"""FP32 vs BF16 vs FP8 training of one model on the same data for the same steps (issue 15).

Trains configs/quickstart.json's model (DeepSeek-V3 architecture, ~5M parameters) on the Debian
documentation with "precision": fp32, bf16 and fp8 in turn (fresh processes), then prints per
precision the final training loss (mean of the last 5 logged steps), the validation loss, their
relative difference to fp32, tokens/s and its ratio to fp32, and the peak RSS.

  bench/train_precision.py [--steps 200] [--out /tmp/seek-precision] [--seek build/seek]
"""
import json
import os
import shutil
import subprocess
import sys

from quickstart_runs import setup

args, base = setup(__doc__, 200, "/tmp/seek-precision")
os.makedirs(args.out, exist_ok=True)
rows = {}
for prec in ("fp32", "bf16", "fp8"):
    run = os.path.join(args.out, prec)
    shutil.rmtree(run, ignore_errors=True)
    cfg = json.loads(json.dumps(base))
    cfg["train"].update({"precision": prec, "steps": args.steps, "eval_every": args.steps,
                         "save_every": args.steps, "log_every": 5})
    cfg["out"] = run
    path = os.path.join(args.out, prec + ".json")
    json.dump(cfg, open(path, "w"), indent=1)
    print(f"training {prec} ({args.steps} steps) ...", file=sys.stderr, flush=True)
    child = subprocess.Popen([args.seek, "train", "--config", path, "--quiet"])
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
    if status != 0:
        sys.exit(f"seek train ({prec}) failed")
    train = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    steps = [m for m in train if m.get("type") == "train"]
    val = [m["val_loss"] for m in train if m.get("type") == "val"]
    last = steps[-5:]
    rows[prec] = {"loss": sum(m["loss"] for m in last) / len(last), "val": val[-1] if val else float("nan"),
                  "tps": steps[-1]["tokens_per_s"], "rss": usage.ru_maxrss / 1024.0}

ref = rows["fp32"]
print(f"{args.steps} steps of configs/quickstart.json's model, batch {base['train']['batch_size']} x "
      f"{base['train']['seq_len']} tokens")
print("| precision | train loss | vs fp32 | val loss | vs fp32 | tokens/s | vs fp32 | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for prec, r in rows.items():
    print(f"| {prec} | {r['loss']:.4f} | {100 * (r['loss'] / ref['loss'] - 1):+.2f}% | {r['val']:.4f} | "
          f"{100 * (r['val'] / ref['val'] - 1):+.2f}% | {r['tps']:.0f} | {r['tps'] / ref['tps']:.2f}x | "
          f"{r['rss']:.0f} |")
