#!/usr/bin/env python3
"""Pipeline parallelism on this machine: the measured bubble of 1F1B and DualPipe against the
simulator and the V3 report's formula for the costs measured in the same step.

Trains configs/quickstart.json's model (4 layers: 2 per stage, and 3 + 1 for 1F1B, the last stage
also running the head and the MTP module; once more 3 + 1 without the MTP module, the closest to
equal stages) on 2 pipeline ranks (one core each) with M micro-batches per step, and once in one
process (one thread) with the same batches. From each
step's metrics (after the first): every rank's compute (pp_busy_s) and its wait for the other
stage (pp_wait_s, the bubble; sends and transfers included), the mean cost of an F, B and W op
over the ranks (pp_costs_s), and what the simulator (dist/pipeline_sim.h, no transfer time) and
the formula ((P-1)(F+B+W) for 1F1B, (P/2-1)(F&B+B-3W) for DualPipe: 0 at P = 2; on the
stages' mean costs) give for those costs (pp_sim_wait_s, pp_formula_s). Medians over the steps.

  bench/pipeline_bubble.py [--steps 8] [--micro 8] [--out /tmp/seek-pipeline] [--seek build/seek]
"""
import json
import statistics

from quickstart_runs import prepared, run, setup

args, base = setup(__doc__, 8, "/tmp/seek-pipeline",
                   lambda ap: ap.add_argument("--micro", type=int, default=8,
                                              help="micro-batches per step (grad_accum)"))
prep = prepared(args, base)
cfg = json.loads(json.dumps(base))
cfg["train"].update({"steps": args.steps, "save_every": 10**6, "eval_every": 10**6, "log_every": 1,
                     "batch_size": 4, "grad_accum": args.micro, "threads": 1})
one = run(args, prep, "one", cfg)[1:]
rows = []
for schedule, split, mtp in (("1f1b", None, 1), ("1f1b", [3, 1], 1), ("1f1b", [3, 1], 0),
                             ("dualpipe", None, 1)):
    c = json.loads(json.dumps(cfg))
    c["parallel"] = {"pipeline": 2, "schedule": schedule}
    if split:
        c["parallel"]["stage_layers"] = split
    c["model"]["num_nextn_predict_layers"] = mtp
    del c["train"]["threads"]
    name = schedule + ("-" + "-".join(map(str, split)) if split else "") + ("" if mtp else "-nomtp")
    steps = run(args, prep, name, c, 2)[1:]  # the first step warms up
    med = lambda f: statistics.median(f(m) for m in steps)
    rows.append({
        "schedule": schedule + (f", layers {split[0]} + {split[1]}" if split else ", layers 2 + 2") +
                    ("" if mtp else ", no MTP"),
        "step": med(lambda m: m["step_s"]),
        "busy": med(lambda m: sum(m["pp_busy_s"]) / 2),
        "wait": med(lambda m: sum(m["pp_wait_s"]) / 2),
        "sim": med(lambda m: m["pp_sim_wait_s"]),
        "formula": med(lambda m: m["pp_formula_s"]),
        "costs": [{k: med(lambda m: m["pp_costs_s"][st][k]) for k in "FBW"} for st in range(2)],
        "tps": steps[-1]["tokens_per_s"],
    })

tokens = cfg["train"]["batch_size"] * cfg["train"]["seq_len"]
print(f"configs/quickstart.json's model (4 layers) on 2 stages, {args.micro} micro-batches of {tokens} tokens "
      f"per step, {args.steps} steps (medians of steps 2-{args.steps}); one process: {one[-1]['tokens_per_s']:.0f} "
      "tokens/s on 1 thread")
print("| schedule | F / B / W per op, stage 0; stage 1 | compute per rank | measured wait per rank | simulator | "
      "formula | wait / compute | tokens/s | vs 1 process |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    ms = lambda x: f"{1000 * x:.1f} ms"
    fbw = "; ".join(" / ".join(f"{1000 * c[k]:.1f}" for k in "FBW") for c in r["costs"])
    print(f"| {r['schedule']} | {fbw} ms | "
          f"{ms(r['busy'])} | {ms(r['wait'])} | {ms(r['sim'])} | {ms(r['formula'])} | "
          f"{100 * r['wait'] / r['busy']:.1f}% | {r['tps']:.0f} | {r['tps'] / one[-1]['tokens_per_s']:.2f}x |")
