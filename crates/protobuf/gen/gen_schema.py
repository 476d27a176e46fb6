#!/usr/bin/env python3
"""Generate crates/protobuf/src/schema/generated.rs from Kubernetes sources.

Why two sources: the `generated.proto` files give the wire layout (tag, type,
cardinality), but not how Go turns the decoded struct into JSON. That needs the
Go struct fields in `types.go`: the JSON name from the `json:` tag, whether it
is `omitempty`/`omitzero`, whether the Go field is a pointer (a pointer that is
on the wire is emitted even when zero; a non-pointer is always on the wire,
even when zero), and whether the field is an embedded struct whose fields Go
inlines into the parent (e.g. core/v1 Volume.VolumeSource).

Usage (each argument is an extracted source tree of one repository):
    gen_schema.py OUT.rs api=DIR apimachinery=DIR apiextensions-apiserver=DIR \
        kube-aggregator=DIR metrics=DIR

The checked-in file was made from these release tags (Kubernetes 1.36):
api v0.36.3, apimachinery v0.36.3, apiextensions-apiserver v0.36.3,
kube-aggregator v0.36.2, metrics v0.36.2. To regenerate, extract each tag
(`git archive TAG | tar -x -C DIR` in a clone of github.com/kubernetes/REPO),
run this script, then `cargo test -p skiff-protobuf`. Warnings list Go
declarations it could not parse (none of them API types) and messages without
a Go struct (those fall back to proto names, emitted when present).
"""

import os
import re
import sys

# Messages whose Go type has its own MarshalJSON, by full proto name.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}
for _v in ("v1", "v1beta1"):
    _p = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions." + _v + "."
    SPECIAL[_p + "JSON"] = "RawJson"
    SPECIAL[_p + "JSONSchemaPropsOrArray"] = "PropsOrArray"
    SPECIAL[_p + "JSONSchemaPropsOrBool"] = "PropsOrBool"
    SPECIAL[_p + "JSONSchemaPropsOrStringArray"] = "PropsOrStringArray"

SCALARS = {
    "string": "S",
    "bytes": "B",
    "bool": "Z",
    "int32": "I32",
    "int64": "I64",
    "double": "F64",
}

warnings = []


def warn(msg):
    warnings.append(msg)


def strip_proto_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def parse_proto(path):
    """Returns (package, go_package, {message: [(card, type, name, tag)]})."""
    text = strip_proto_comments(open(path).read())
    package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
    go_package = re.search(r'option\s+go_package\s*=\s*"([^"]+)"', text).group(1)
    messages = {}
    for m in re.finditer(r"^message\s+(\w+)\s*\{(.*?)^\}", text, re.M | re.S):
        name, body = m.group(1), m.group(2)
        if re.search(r"^\s+(message|enum|oneof)\b", body, re.M):
            raise SystemExit(f"{path}: nested declarations in {name} not supported")
        fields = []
        for line in body.split(";"):
            line = " ".join(line.split())
            if not line:
                continue
            fm = re.fullmatch(r"map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)", line)
            if fm:
                if fm.group(1) != "string":
                    raise SystemExit(f"{path}: {name}: map key {fm.group(1)}")
                fields.append(("Map", fm.group(2), fm.group(3), int(fm.group(4))))
                continue
            fm = re.fullmatch(r"(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", line)
            if not fm:
                raise SystemExit(f"{path}: {name}: cannot parse field {line!r}")
            card = "Repeated" if fm.group(1) == "repeated" else "One"
            fields.append((card, fm.group(2), fm.group(3), int(fm.group(4))))
        messages[name] = fields
    return package, go_package, messages


TYPE_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*(\})?\s*$")
IMPORT_RE = re.compile(r'^\s*(?:import\s+)?(\w+\s+)?"(k8s\.io/[^"]+)"\s*$')
NAMED_RE = re.compile(r"^type\s+(\w+)\s+(\S+)")
TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def parse_go_dir(d):
    """Returns ({struct: [field dict]}, {named non-struct type: (go type, imports)}, group)."""
    structs, named, group = {}, {}, None
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".go") or fn.endswith("_test.go"):
            continue
        text = re.sub(r"/\*.*?\*/", "", open(os.path.join(d, fn)).read(), flags=re.S)
        lines = text.split("\n")
        imports = {}
        for line in lines:
            im = IMPORT_RE.match(line)
            if im:
                alias = (im.group(1) or "").strip() or im.group(2).rsplit("/", 1)[-1]
                imports[alias] = im.group(2)
        i = 0
        while i < len(lines):
            line = lines[i]
            gm = re.match(r'^(?:const\s+)?GroupName\s*=\s*"([^"]*)"', line.strip())
            if gm and fn == "register.go":
                group = gm.group(1)
            tm = TYPE_RE.match(line)
            if not tm:
                nm = NAMED_RE.match(line)
                if nm and nm.group(2) not in ("struct", "interface", "="):
                    named[nm.group(1)] = (nm.group(2), imports)
                i += 1
                continue
            name, fields, depth = tm.group(1), [], 1
            i += 1
            if tm.group(2):
                structs[name] = fields
                continue
            while i < len(lines) and depth > 0:
                raw = lines[i]
                i += 1
                tag = ""
                bt = raw.find("`")
                code = raw
                if bt >= 0:
                    end = raw.rfind("`")
                    tag, code = raw[bt + 1 : end], raw[:bt]
                code = code.split("//")[0].strip()
                if not code:
                    continue
                if code.endswith("{"):
                    depth += 1
                    continue
                if code == "}":
                    depth -= 1
                    continue
                if depth != 1:
                    continue
                toks = code.split()
                if len(toks) == 1:
                    gtype, fname, embedded = toks[0], toks[0].lstrip("*").split(".")[-1], True
                elif len(toks) == 2:
                    fname, gtype, embedded = toks[0], toks[1], False
                else:
                    warn(f"{d}: {name}: cannot parse Go field {code!r}")
                    continue
                tags = dict(TAG_RE.findall(tag))
                fields.append(
                    {"name": fname, "type": gtype, "embedded": embedded, "json": tags.get("json"), "pb": tags.get("protobuf")}
                )
            structs[name] = fields
    return structs, named, group


def go_dir_for(go_package, roots):
    for prefix, root in roots.items():
        p = "k8s.io/" + prefix
        if go_package == p or go_package.startswith(p + "/"):
            return os.path.join(root, go_package[len(p) + 1 :])
    raise SystemExit(f"no source tree for {go_package}")


_go_cache = {}


def go_package_structs(go_package, roots):
    if go_package not in _go_cache:
        _go_cache[go_package] = parse_go_dir(go_dir_for(go_package, roots))[0]
    return _go_cache[go_package]


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    out = sys.argv[1]
    roots = dict(a.split("=", 1) for a in sys.argv[2:])
    protos = []
    for root in roots.values():
        for dp, dns, fns in os.walk(root):
            dns[:] = sorted(x for x in dns if x not in ("testdata", "vendor", "test", "testing", "examples", "testapigroup"))
            if "generated.proto" in fns:
                protos.append(os.path.join(dp, "generated.proto"))
    protos.sort()

    # Pass 1: all messages with their package and Go info.
    pkgs = []  # (package, go_dir, messages, structs, named, group, version)
    for path in protos:
        package, go_package, messages = parse_proto(path)
        d = go_dir_for(go_package, roots)
        structs, named, group = parse_go_dir(d)
        version = os.path.basename(d)
        pkgs.append((package, messages, structs, named, group, version))

    index = {}
    order = []
    for package, messages, *_ in pkgs:
        for name in sorted(messages):
            full = package + "." + name
            index[full] = len(order)
            order.append(full)
    if len(order) >= 65536:
        raise SystemExit("too many messages for u16 indices")

    def resolve(package, t):
        if t in SCALARS:
            return SCALARS[t]
        full = t[1:] if t.startswith(".") else (t if "." in t else package + "." + t)
        if full not in index:
            raise SystemExit(f"{package}: unknown type {t}")
        return f"M({index[full]})"

    out_msgs = []
    kinds = []
    for package, messages, structs, named, group, version in pkgs:
        for name in sorted(messages):
            full = package + "." + name
            pfields = {tag: (card, t, pname) for card, t, pname, tag in messages[name]}
            form = SPECIAL.get(full)
            go = structs.get(name)
            gt, imports = named.get(name, ("", {}))
            if go is None and "." in gt and not gt.startswith(("[]", "map[")):
                # `type List metav1.List`: a named copy of a struct in another package.
                alias, tname = gt.split(".", 1)
                if alias in imports:
                    go = go_package_structs(imports[alias], roots).get(tname)
            if form is None and go is None:
                if gt.startswith("[]") and [c for c, *_ in messages[name]] == ["Repeated"]:
                    form = "List"
                else:
                    warn(f"{full}: no Go struct; using proto names")
            form = form or "Object"
            rows = []
            if go is None or form != "Object":
                # Special and list forms are handled by tag in Rust; unknown
                # structs fall back to proto names, emitted when present.
                for card, t, pname, tag in messages[name]:
                    rows.append((tag, pname, resolve(package, t), card, ["OMITEMPTY", "POINTER"]))
            else:
                seen = set()
                for gf in go:
                    pb = gf["pb"]
                    if not pb or pb == "-":
                        jt = gf["json"]
                        if jt is not None and jt.split(",")[0] != "-" and not gf["type"].endswith("TypeMeta"):
                            warn(f"{full}: Go field {gf['name']} has JSON but no protobuf tag")
                        continue
                    parts = pb.split(",")
                    tag = int(parts[1])
                    if tag not in pfields:
                        warn(f"{full}: Go field {gf['name']} tag {tag} not in proto")
                        continue
                    seen.add(tag)
                    card, t, pname = pfields[tag]
                    jt = gf["json"]
                    flags = []
                    if jt is None:
                        jname, opts = ("" if gf["embedded"] else gf["name"]), []
                    else:
                        jname, *opts = jt.split(",")
                    if jname == "-":
                        continue  # on the wire but never in JSON
                    if jname == "" and not gf["embedded"]:
                        jname = gf["name"]  # encoding/json: no tag name, Go field name
                    if gf["embedded"] and jname == "":
                        flags.append("INLINE")
                    if "omitempty" in opts:
                        flags.append("OMITEMPTY")
                    if "omitzero" in opts:
                        flags.append("OMITZERO")
                    if gf["type"].startswith("*"):
                        flags.append("POINTER")
                    rows.append((tag, jname, resolve(package, t), card, flags))
                for tag, (card, t, pname) in sorted(pfields.items()):
                    if tag not in seen and form == "Object":
                        warn(f"{full}: proto field {pname}={tag} has no Go field; using proto name")
                        rows.append((tag, pname, resolve(package, t), card, ["OMITEMPTY", "POINTER"]))
                if group is not None and any(gf["embedded"] and gf["type"].endswith("TypeMeta") for gf in go):
                    api_version = version if group == "" else group + "/" + version
                    kinds.append((api_version, name, index[full]))
            out_msgs.append((full, form, rows))

    with open(out, "w") as f:
        f.write("// @generated by crates/protobuf/gen/gen_schema.py from the Kubernetes\n")
        f.write("// generated.proto files and Go types (k8s.io/* v0.36). Do not edit.\n")
        f.write("use super::{Card::*, Form, INLINE, Message, OMITEMPTY, OMITZERO, POINTER, Ty::*, f};\n\n")
        f.write(f"pub(crate) static MESSAGES: [Message; {len(out_msgs)}] = [\n")
        for i, (full, form, rows) in enumerate(out_msgs):
            f.write(f"    Message {{ // {i}\n        name: {rust_str(full)},\n        form: Form::{form},\n")
            f.write("        fields: &[\n")
            for tag, jname, ty, card, flags in rows:
                fl = " | ".join(flags) or "0"
                f.write(f"            f({tag}, {rust_str(jname)}, {ty}, {card}, {fl}),\n")
            f.write("        ],\n    },\n")
        f.write("];\n\n")
        kinds.sort()
        f.write("/// (apiVersion, kind, index into MESSAGES), sorted for binary search.\n")
        f.write(f"pub(crate) static KINDS: [(&str, &str, u16); {len(kinds)}] = [\n")
        for av, k, i in kinds:
            f.write(f"    ({rust_str(av)}, {rust_str(k)}, {i}),\n")
        f.write("];\n")
    for w in warnings:
        print("warning:", w, file=sys.stderr)
    print(f"{len(out_msgs)} messages, {len(kinds)} kinds, {len(warnings)} warnings", file=sys.stderr)


if __name__ == "__main__":
    main()
