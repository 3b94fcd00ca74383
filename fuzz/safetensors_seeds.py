#!/usr/bin/env python3
"""Writes a seed corpus for fuzz_safetensors: the fixture checkpoints' headers, each re-laid-out
with tiny shapes so header + data fit in a fuzz input, plus a few hand-made edge cases.

usage: fuzz/safetensors_seeds.py OUT_DIR
"""
import glob, json, os, struct, sys

SIZES = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "I32": 4, "I64": 8}


def image(header, data_size, pad=True):
    text = json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + bytes(data_size)


def shrink(header, keep):
    """First `keep` tensors of a real header, shapes cut to 1 per dim, offsets re-tiled."""
    out, pos = {}, 0
    if "__metadata__" in header:
        out["__metadata__"] = header["__metadata__"]
    names = sorted(k for k in header if k != "__metadata__")[:keep]
    for name in names:
        e = header[name]
        shape = [min(d, 1) for d in e["shape"]]
        n = SIZES[e["dtype"]]
        for d in shape:
            n *= d
        out[name] = {"dtype": e["dtype"], "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
    return image(out, pos)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "tests", "fixtures", "models")
    seeds = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "*.safetensors"))):
        raw = open(path, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        tag = os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path).split(".")[0]
        seeds[tag + "_prefix"] = raw[:8 + n]  # real header, data missing: rejected late
        for keep in (1, 8, 64, 100000):
            seeds[f"{tag}_{keep}"] = shrink(header, keep)
    e = lambda dt, shape, b, end: {"dtype": dt, "shape": shape, "data_offsets": [b, end]}
    seeds["edge"] = image({"__metadata__": {"format": "pt"}, "a": e("F8_E4M3", [1], 0, 1),
                           "b": e("BF16", [2], 1, 5), "s": e("F32", [], 5, 9),
                           "z": e("I64", [0, 3], 9, 9)}, 9)
    seeds["empty"] = image({}, 0, pad=False)
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out_dir}, largest {max(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
