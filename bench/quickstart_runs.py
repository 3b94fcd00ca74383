"""What bench/train_precision.py and bench/train_scaling.py share: their command line (--steps,
--out, --seek) and the model they train, configs/quickstart.json (its // comment lines removed)."""
import argparse
import json
import os
import re

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
