import http.server, json, sys, os, itertools
OUT = sys.argv[2]
counter = itertools.count()
RES = {
 "/api/v1": ("v1", [("namespaces","Namespace",False,["ns"]),("configmaps","ConfigMap",True,["cm"]),("secrets","Secret",True,[]),("pods","Pod",True,["po"]),("services","Service",True,["svc"]),("serviceaccounts","ServiceAccount",True,["sa"])]),
 "/apis/apps/v1": ("apps/v1", [("deployments","Deployment",True,["deploy"])]),
 "/apis/batch/v1": ("batch/v1", [("jobs","Job",True,[]),("cronjobs","CronJob",True,["cj"])]),
 "/apis/authorization.k8s.io/v1": ("authorization.k8s.io/v1", [("selfsubjectaccessreviews","SelfSubjectAccessReview",False,[]),("selfsubjectrulesreviews","SelfSubjectRulesReview",False,[])]),
 "/apis/rbac.authorization.k8s.io/v1": ("rbac.authorization.k8s.io/v1", [("roles","Role",True,[]),("rolebindings","RoleBinding",True,[]),("clusterroles","ClusterRole",False,[]),("clusterrolebindings","ClusterRoleBinding",False,[])]),
 "/apis/policy/v1": ("policy/v1", [("poddisruptionbudgets","PodDisruptionBudget",True,["pdb"])]),
 "/apis/networking.k8s.io/v1": ("networking.k8s.io/v1", [("ingresses","Ingress",True,["ing"])]),
 "/apis/scheduling.k8s.io/v1": ("scheduling.k8s.io/v1", [("priorityclasses","PriorityClass",False,["pc"])]),
}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def send_json(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        p = self.path.split("?")[0]
        sys.stderr.write("GET %s\n" % self.path)
        if p == "/api":
            return self.send_json(200, {"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]})
        if p == "/apis":
            groups = []
            for k,(gv,_) in RES.items():
                if k.startswith("/apis/"):
                    g,v = gv.split("/")
                    groups.append({"name":g,"versions":[{"groupVersion":gv,"version":v}],"preferredVersion":{"groupVersion":gv,"version":v}})
            return self.send_json(200, {"kind":"APIGroupList","apiVersion":"v1","groups":groups})
        if p in RES:
            gv, rs = RES[p]
            return self.send_json(200, {"kind":"APIResourceList","apiVersion":"v1","groupVersion":gv,"resources":[
              {"name":n,"singularName":k.lower(),"namespaced":ns,"kind":k,"shortNames":sn,"verbs":["create","delete","get","list","patch","update","watch"]} for (n,k,ns,sn) in rs]})
        return self.send_json(404, {"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404})
    def do_POST(self):
        n = int(self.headers.get("Content-Length","0"))
        body = self.rfile.read(n)
        i = next(counter)
        name = "%02d" % i
        with open(os.path.join(OUT, name + ".bin"), "wb") as f: f.write(body)
        with open(os.path.join(OUT, name + ".meta"), "w") as f: f.write("POST %s\n%s\n" % (self.path, self.headers))
        sys.stderr.write("POST %s %s %d\n" % (self.path, self.headers.get("Content-Type"), n))
        p = self.path.split("?")[0]
        if "selfsubjectaccessreviews" in p:
            return self.send_json(201, {"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","status":{"allowed":True}})
        if "selfsubjectrulesreviews" in p:
            return self.send_json(201, {"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","status":{"resourceRules":[],"nonResourceRules":[],"incomplete":False}})
        return self.send_json(201, {"apiVersion":"v1","kind":"Status","status":"Success"})
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
