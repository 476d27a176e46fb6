#!/usr/bin/env python3
"""A logging fake API server that serves exported OpenAPI v3 documents, so
the real kubectl can be pointed at them (explain, create, apply).

Usage:
    cargo run -q -p skiff-openapi --example dump -- export /tmp/oa
    tools/fake_apiserver.py /tmp/oa 18080 &
    kubectl --server http://127.0.0.1:18080 --cache-dir /tmp/kc explain pods.spec

Discovery is derived from the documents' paths. Objects are kept in memory;
PATCH bodies are logged but applied only as a JSON merge patch. Every
request's method, path, query and content type is logged to stderr.
"""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

ROOT = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18080


def load(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return json.load(f)


INDEX = load("openapi/v3.json")
DOCS = {p: load(f"openapi/v3/{p}.json") for p in INDEX["paths"]}
RESOURCES = {}  # gv path -> list of APIResource
for gvpath, doc in DOCS.items():
    prefix = "/" + gvpath + "/"
    res = {}
    for path, item in doc["paths"].items():
        rest = path[len(prefix):]
        ns = rest.startswith("namespaces/{namespace}/")
        if ns:
            rest = rest[len("namespaces/{namespace}/"):]
        parts = rest.split("/")
        if len(parts) == 1 and parts[0] and "{" not in parts[0]:
            for m, op in item.items():
                if m == "parameters":
                    continue
                gvk = op["x-kubernetes-group-version-kind"]
                r = res.setdefault(parts[0], {"name": parts[0], "namespaced": False, "kind": gvk["kind"], "verbs": set()})
                r["namespaced"] = r["namespaced"] or ns
                r["verbs"].add({"get": "list", "post": "create", "delete": "deletecollection"}[m])
        if len(parts) == 2 and parts[1] == "{name}":
            r = res.get(parts[0])
            for m in item:
                if r and m != "parameters":
                    r["verbs"].add({"get": "get", "put": "update", "patch": "patch", "delete": "delete"}[m])
    RESOURCES[gvpath] = [dict(r, verbs=sorted(r["verbs"]), singularName="") for r in res.values()]

OBJECTS = {}


def merge(target, patch):
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge(target.get(k), v)
    return target


class Handler(BaseHTTPRequestHandler):
    def send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, msg):
        self.send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "reason": reason, "code": code})

    def log_request_line(self, body=b""):
        ct = self.headers.get("Content-Type", "")
        print(f"{self.command} {self.path} ct={ct} body={body[:4000].decode(errors='replace')}", file=sys.stderr, flush=True)

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.log_request_line()
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/version":
            return self.send(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0-skiff"})
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{PORT}"}]})
        if path == "/apis":
            groups = {}
            for gv in DOCS:
                if gv.startswith("apis/"):
                    _, g, v = gv.split("/")
                    groups.setdefault(g, []).append({"groupVersion": f"{g}/{v}", "version": v})
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[-1]} for g, vs in groups.items()]})
        if path == "/openapi/v3":
            return self.send(200, INDEX)
        if path.startswith("/openapi/v3/"):
            doc = DOCS.get(path[len("/openapi/v3/"):])
            return self.send(200, doc) if doc else self.status(404, "NotFound", "no such document")
        if path.lstrip("/") in RESOURCES:
            gv = path.lstrip("/")
            gvs = gv[len("api/"):] if gv.startswith("api/") else gv[len("apis/"):]
            return self.send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gvs, "resources": RESOURCES[gv]})
        if path in OBJECTS:
            return self.send(200, OBJECTS[path])
        return self.status(404, "NotFound", f"{path} not found")

    def do_POST(self):
        body = self.body()
        self.log_request_line(body)
        obj = json.loads(body)
        path = urlsplit(self.path).path.rstrip("/")
        obj.setdefault("metadata", {}).update(uid="00000000-0000-0000-0000-000000000001", resourceVersion="1")
        OBJECTS[f"{path}/{obj['metadata']['name']}"] = obj
        self.send(201, obj)

    def do_PATCH(self):
        body = self.body()
        self.log_request_line(body)
        path = urlsplit(self.path).path.rstrip("/")
        if path not in OBJECTS:
            return self.status(404, "NotFound", f"{path} not found")
        OBJECTS[path] = merge(OBJECTS[path], json.loads(body))
        self.send(200, OBJECTS[path])


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
