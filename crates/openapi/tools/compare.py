#!/usr/bin/env python3
"""Compare generated OpenAPI v3 schemas with the upstream v2 spec, structurally.

Usage: compare.py UPSTREAM_V2_JSON GENERATED_JSON

GENERATED_JSON is either a components.schemas map or a whole v3 document
(`cargo run -p skiff-openapi --example dump`). Reports, per definition present
in both: property sets, required lists, types, formats, $ref targets and every
x-kubernetes-* extension. Descriptions are not compared. A development check,
not a test: differences that are expected (1.35 types vs 1.36 spec) are noise.
"""
import json
import sys


def norm(s):
    """Reduce a schema to what matters for comparison, following v2/v3 ref forms."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("description", "default", "example"):
            continue
        if k == "$ref":
            out["$ref"] = v.rsplit("/", 1)[-1]
        elif k == "allOf" and len(v) == 1 and "$ref" in v[0]:
            out["$ref"] = v[0]["$ref"].rsplit("/", 1)[-1]
        elif k == "properties":
            out[k] = {p: norm(ps) for p, ps in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = norm(v)
        elif k in ("oneOf", "anyOf", "allOf"):
            out[k] = [norm(x) for x in v]
        elif k == "required":
            out[k] = sorted(v)
        else:
            out[k] = v
    return out


def diff(path, a, b, report):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                report.append(f"{path}.{k}: only generated: {json.dumps(b[k])[:120]}")
            elif k not in b:
                report.append(f"{path}.{k}: only upstream: {json.dumps(a[k])[:120]}")
            else:
                diff(f"{path}.{k}", a[k], b[k], report)
    elif a != b:
        report.append(f"{path}: upstream {json.dumps(a)[:120]} != generated {json.dumps(b)[:120]}")


def main():
    up = json.load(open(sys.argv[1]))["definitions"]
    gen = json.load(open(sys.argv[2]))
    if "components" in gen:
        gen = gen["components"]["schemas"]
    report = []
    for name in sorted(gen):
        if name not in up:
            report.append(f"{name}: not upstream")
            continue
        diff(name, norm(up[name]), norm(gen[name]), report)
    for line in report:
        print(line)
    print(f"# {len(report)} differences over {len(gen)} generated definitions", file=sys.stderr)


if __name__ == "__main__":
    main()
