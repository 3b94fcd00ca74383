#!/usr/bin/env python3
"""Data-parallel scaling of `seek train` on this machine: 1, 2 and 4 ranks (mpirun), strong
(the same global batch split over the ranks) and weak (the same batch per rank), with ZeRO-1.

Trains configs/quickstart.json's model (~5M parameters) on the Debian documentation for a few
steps per run and prints tokens/s, the speed-up over 1 rank, and the share of a step rank 0
spends in collectives (comm_s / step_s of metrics.jsonl, waits for slower ranks included).
On one machine the ranks share its cores (each gets its share as OpenMP threads), so this
measures the overhead of the data-parallel step rather than added compute.

With --expert, every multi-rank run is also expert-parallel over all its ranks (the model's 8
routed experts split 4/4 or 2/2/2/2, all-to-all dispatch and combine in every MoE layer): the
table adds rank 0's share of a step in the exchanges and the rows each rank sent per step.

  bench/train_scaling.py [--steps 12] [--expert] [--out /tmp/seek-scaling] [--seek build/seek]
"""
import json

from quickstart_runs import prepared, run, setup

args, base = setup(__doc__, 12, "/tmp/seek-scaling",
                   lambda ap: ap.add_argument("--expert", action="store_true",
                                              help="expert parallelism over all ranks of a run"))
B = base["train"]["batch_size"]
prep = prepared(args, base)
rows = []
for mode in ("strong", "weak"):
    for np_ in (1, 2, 4):
        cfg = json.loads(json.dumps(base))
        cfg["train"].update({"steps": args.steps, "save_every": 10**6, "eval_every": 10**6,
                             "log_every": 1, "batch_size": B if mode == "strong" else B * np_})
        cfg["parallel"] = {"data": np_, "zero": 1 if np_ > 1 else 0}
        if args.expert:
            cfg["parallel"]["expert"] = np_
        steps = run(args, prep, f"{mode}-{np_}", cfg, np_)[1:]  # the first step warms up
        share = (sum(m["comm_s"] / m["step_s"] for m in steps) / len(steps)) if np_ > 1 else 0.0
        a2a = (sum(m.get("a2a_s", 0) / m["step_s"] for m in steps) / len(steps)) if np_ > 1 else 0.0
        sent = (sum(sum(m.get("a2a_rows", [0])) for m in steps) / len(steps) / np_) if np_ > 1 else 0.0
        rows.append((mode, np_, cfg["train"]["batch_size"], steps[-1]["tokens_per_s"], share, a2a, sent))

print(f"configs/quickstart.json's model, seq_len {base['train']['seq_len']}, {args.steps} steps per run, "
      f"ZeRO-1{' and expert parallelism' if args.expert else ''} above 1 rank")
ep_cols = " all-to-all share | rows sent per rank per step |" if args.expert else ""
print("| scaling | ranks | global batch | tokens/s | vs 1 rank | collectives share of a step |" + ep_cols)
print("|---|---|---|---|---|---|" + ("---|---|" if args.expert else ""))
for mode, np_, b, tps, share, a2a, sent in rows:
    one = next(r[3] for r in rows if r[0] == mode and r[1] == 1)
    ep = f" {100 * a2a:.1f}% | {sent:.0f} |" if args.expert else ""
    print(f"| {mode} | {np_} | {b} | {tps:.0f} | {tps / one:.2f}x | {100 * share:.1f}% |" + ep)
