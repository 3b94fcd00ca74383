"""What bench/train_precision.py, train_scaling.py and pipeline_bubble.py share: their command line
(--steps, --out, --seek), the model they train (configs/quickstart.json, its // comment lines
removed), its prepared data and the way a run is launched."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup(doc, steps, out, extra=None):
    """Parses the script's arguments (defaults: `steps`, `out`, build/seek; `extra(parser)` adds
    the script's own) and returns them with the quickstart config as a dict."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    if extra:
        extra(ap)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--out", default=out)
    ap.add_argument("--seek", default=os.path.join(root, "build", "seek"))
    args = ap.parse_args()
    text = open(os.path.join(root, "configs", "quickstart.json")).read()
    return args, json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


def mpirun(np_):
    """The launcher prefix of an np_-rank run (none for one rank)."""
    if np_ == 1:
        return []
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "-np", str(np_)]


def prepared(args, base):
    """OUT/prep: the quickstart corpus' tokenizer and token shards, made once (one 1-step run)
    and shared by every run of the script."""
    prep = os.path.join(args.out, "prep")
    if not os.path.exists(os.path.join(prep, "data", "train.bin")):
        os.makedirs(args.out, exist_ok=True)
        cfg = json.loads(json.dumps(base))
        cfg["train"].update({"steps": 1, "save_every": 1, "eval_every": 1})
        cfg["out"] = prep
        json.dump(cfg, open(prep + ".json", "w"))
        shutil.rmtree(prep, ignore_errors=True)
        subprocess.run([args.seek, "train", "--config", prep + ".json", "--quiet"], check=True)
    return prep


def run(args, prep, name, cfg, np_=1):
    """Trains cfg (its "out" set here) as OUT/name on np_ ranks, starting from prep's tokenizer
    and shards; returns the train lines of its metrics.jsonl."""
    out = os.path.join(args.out, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for sub in ("data", "tokenizer"):
        shutil.copytree(os.path.join(prep, sub), os.path.join(out, sub))
    cfg = json.loads(json.dumps(cfg))
    cfg["out"] = out
    json.dump(cfg, open(out + ".json", "w"))
    print(f"{name} ...", file=sys.stderr, flush=True)
    subprocess.run(mpirun(np_) + [args.seek, "train", "--config", out + ".json", "--quiet"], check=True)
    lines = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    return [m for m in lines if m.get("type") == "train"]
