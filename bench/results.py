"""What every bench phase reports: summaries of its measurements, its results as JSON
(atomically) and its generated block of docs/benchmarks.md. Standard library only; no
environment read at import."""
import json
import os
import statistics

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")


def summary(values, nd=1):
    """Median, min, max (rounded to `nd` places) and count of the values that are not None;
    None without any."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": round(statistics.median(v), nd), "min": round(min(v), nd), "max": round(max(v), nd), "n": len(v)}


def replace_block(text, begin, end, md):
    """`text` with what lies between the markers `begin` and `end` replaced by `md`; None
    when either marker is missing."""
    if begin not in text or end not in text:
        return None
    pre, rest = text.split(begin, 1)
    _old, post = rest.split(end, 1)
    return pre + begin + "\n" + md + end + post


def update_block(begin, end, md, doc=DOC):
    """Replaces one block of `doc` in place. False (nothing written) without the file or
    either marker."""
    try:
        text = open(doc).read()
    except FileNotFoundError:
        return False
    new = replace_block(text, begin, end, md)
    if new is None:
        return False
    with open(doc, "w") as f:
        f.write(new)
    return True


def write_json(out_dir, name, obj):
    """`obj` as out_dir/name, written to a temporary file first: a reader never sees half."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, name))
