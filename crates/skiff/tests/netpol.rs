//! NetworkPolicy enforced on real traffic: a server and an agent, each node
//! in its own network namespace on a test-made machine network, real
//! busybox containers. A busybox httpd pod on the server's node; clients on
//! the agent's node (ingress is enforced where the server pod runs, for a
//! client on another node) and one on the server's node (same bridge).
//! Ingress by podSelector, namespaceSelector and ipBlock (with except),
//! egress on the agent's node, and removal restoring traffic. The time from
//! `kubectl create` to enforcement is printed (not asserted beyond a
//! generous bound: performance numbers come from benchmarks).

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::machine::MachineCluster;
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:np";
const CIDR: &str = "10.42.0.0/16";

fn image(data: &std::path::Path) {
    let store = Store::open(data).expect("store");
    fixtures::busybox_image(&store, IMAGE).expect("busybox image");
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    c.kubectl_json(K, args)
}

/// A pod pinned to `node`; `labels` is a YAML flow map, `ports` a YAML
/// flow list.
fn pod(name: &str, ns: &str, node: &str, labels: &str, ports: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n\
         spec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  \
         - {{name: c, image: \"{IMAGE}\", ports: {ports}, command: [sh, -c, \"{command}\"]}}\n---\n"
    )
}

/// A client pod: (namespace, name).
type Who = (&'static str, &'static str);

fn exec_cmd(c: &Cluster, (ns, pod): Who, script: &str) -> std::process::Command {
    let mut cmd = c.kubectl_command(K, &["exec", "-n", ns, pod, "--", "sh", "-c", script]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Kills a still-running `kubectl exec` if the test fails first.
struct Running(Option<Child>);

impl Running {
    fn spawn(mut cmd: std::process::Command) -> Running {
        Running(Some(cmd.spawn().expect("kubectl exec")))
    }

    fn exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|c| c.try_wait().expect("try_wait").is_some())
    }

    fn output(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("not yet waited for")
            .wait_with_output()
            .expect("kubectl exec output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether each client gets the web pod's page at `url`: one `timeout 3
/// wget` per client, all run at once (a blocked one costs the full 3 s).
fn reach(c: &Cluster, who: &[Who], url: &str) -> Vec<bool> {
    let script = format!("timeout 3 wget -q -O - {url}");
    let children: Vec<Running> = who
        .iter()
        .map(|w| Running::spawn(exec_cmd(c, *w, &script)))
        .collect();
    children
        .into_iter()
        .map(|r| {
            let out = r.output();
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "web"
        })
        .collect()
}

/// Waits until each client's reachability is as `want` says.
#[track_caller]
fn expect(c: &Cluster, who: &[Who], url: &str, want: &[bool], what: &str) {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        got = reach(c, who, url);
        if got == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: reachability of {who:?} is {got:?}, want {want:?}");
}

/// Runs `change` while `who` polls `url` in a loop inside its container,
/// and returns how long after `change` started the loop saw the expected
/// state: blocked (`until_blocked`) or allowed again.
///
/// Blocked: sequential `timeout 2 wget` until one fails (2 s, not 1: a
/// request on this loaded machine must not time out spuriously);
/// enforcement came before that last attempt, so the figure is the loop's
/// end minus its 2 s timeout. Allowed: an attempt starts every 50 ms in the background
/// (busybox `timeout` only takes whole seconds) and the loop ends at the
/// first success, so the figure is within ~50 ms plus exec overhead.
fn time_until(
    c: &Cluster,
    who: Who,
    url: &str,
    until_blocked: bool,
    change: impl FnOnce(),
) -> Duration {
    let script = if until_blocked {
        format!(
            "n=0; while timeout 2 wget -q -O /dev/null {url}; do n=$((n+1)); usleep 20000; done; echo $n"
        )
    } else {
        format!(
            "rm -f /tmp/ok; n=0; while [ ! -f /tmp/ok ]; do \
             (timeout 2 wget -q -O /dev/null {url} && touch /tmp/ok) >/dev/null 2>&1 & \
             n=$((n+1)); usleep 50000; done; echo $n"
        )
    };
    let mut child = Running::spawn(exec_cmd(c, who, &script));
    // Let the loop run in its steady state before the change.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !child.exited(),
        "the probe loop in {who:?} ended before the change"
    );
    let t0 = Instant::now();
    change();
    let ended = loop {
        if child.exited() {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{who:?} never saw the change"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.output();
    let attempts: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if until_blocked {
        // The loop must have succeeded before the change, or it measured
        // nothing.
        assert!(attempts > 0, "no request got through before the policy");
        ended.saturating_sub(Duration::from_secs(2))
    } else {
        ended
    }
}

#[test]
fn network_policy_on_real_traffic_across_nodes() {
    let mc = MachineCluster::start(1, CIDR, &[], &[], image, |_| {});
    let (server, agent) = (&mc.server, &mc.agents[0]);
    let here = mc.server_node();
    let there = agent.node.node_name.clone();

    let sleep = "exec sleep 3600";
    let mut objects = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: friends, labels: {team: friends}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
         spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n---\n",
    );
    objects += &pod(
        "web",
        "default",
        &here,
        "{app: web}",
        "[{name: http, containerPort: 8080}]",
        "mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    objects += &pod("plain", "default", &there, "{}", "[]", sleep);
    objects += &pod("client", "default", &there, "{role: client}", "[]", sleep);
    objects += &pod("local", "default", &here, "{egress: open}", "[]", sleep);
    objects += &pod("guest", "friends", &there, "{}", "[]", sleep);
    server.apply_stdin(K, &["create", "-f", "-"], &objects);

    let ip_of = |ns: &str, name: &str| -> String {
        eventually(90, &format!("{ns}/{name} running"), || {
            let v = json(server, &["get", "pod", "-n", ns, name, "-o", "json"]);
            (v["status"]["phase"] == "Running")
                .then(|| v["status"]["podIP"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let web_ip = ip_of("default", "web");
    let plain_ip = ip_of("default", "plain");
    let client_ip = ip_of("default", "client");
    for (ns, name) in [("default", "local"), ("friends", "guest")] {
        ip_of(ns, name);
    }
    let url = format!("http://{web_ip}:8080/");
    const PLAIN: Who = ("default", "plain");
    const CLIENT: Who = ("default", "client");
    const LOCAL: Who = ("default", "local");
    const GUEST: Who = ("friends", "guest");
    let all = [PLAIN, CLIENT, LOCAL, GUEST];

    // No policy: everyone reaches the web pod.
    expect(server, &all, &url, &[true; 4], "without a policy");

    // The local client's egress is isolated but open to everything: it
    // still reaches the web pod, and below, the web pod's ingress must
    // still be checked for it (an allowed egress must not short-cut the
    // destination's ingress on the same node).
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: local-egress-open, namespace: default}\n\
         spec:\n  podSelector: {matchLabels: {egress: open}}\n  policyTypes: [Egress]\n  \
         egress: [{}]\n",
    );
    eventually(20, "the local pod's egress chain", || {
        let out = server
            .node()
            .expect("node")
            .command("nft")
            .args(["list", "table", "inet", "skiff-netpol"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("jump out_")
            .then_some(())
    });
    expect(server, &all, &url, &[true; 4], "with an open egress policy");

    // Ingress only from role=client pods of the same namespace, to the
    // web container's named port.
    let from_clients = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
        metadata: {name: web-from-clients, namespace: default}\n\
        spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  \
        ingress:\n  - from: [{podSelector: {matchLabels: {role: client}}}]\n    \
        ports: [{port: http, protocol: TCP}]\n";
    let blocked_after = time_until(server, PLAIN, &url, true, || {
        server.apply_stdin(K, &["create", "-f", "-"], from_clients);
    });
    eprintln!(
        "netpol: ingress policy enforced (cross-node client blocked) {} ms after kubectl create started",
        blocked_after.as_millis()
    );
    assert!(blocked_after < Duration::from_secs(10), "{blocked_after:?}");
    // The labelled client gets through; the unlabelled ones on the other
    // node, on the same node (bridged, its egress open) and in another
    // namespace do not.
    expect(
        server,
        &all,
        &url,
        &[false, true, false, false],
        "ingress from role=client",
    );

    // The server's node programs its own pod only; the agent's node has
    // no isolated pod at all.
    let table = |node: &support::NodeNs| -> String {
        let out = node
            .command("nft")
            .args(["list", "table", "inet", "skiff-netpol"])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let t_here = table(server.node().expect("node"));
    assert!(
        t_here.contains(&format!("ip daddr {web_ip} jump")),
        "{t_here}"
    );
    let t_there = table(&agent.node);
    assert!(
        t_there.contains("hook forward") && !t_there.contains("jump"),
        "{t_there}"
    );

    // A namespaceSelector rule adds the friends namespace.
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: web-from-friends, namespace: default}\n\
         spec:\n  podSelector: {matchLabels: {app: web}}\n  \
         ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: friends}}}]\n",
    );
    expect(
        server,
        &all,
        &url,
        &[false, true, false, true],
        "ingress from the friends namespace",
    );

    // An ipBlock rule: first the unlabelled client's own /32, then the
    // whole pod network except it.
    let block = |cidr: &str, except: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {{name: web-from-block, namespace: default}}\n\
             spec:\n  podSelector: {{matchLabels: {{app: web}}}}\n  \
             ingress:\n  - from: [{{ipBlock: {{cidr: \"{cidr}\", except: [{except}]}}}}]\n"
        )
    };
    server.apply_stdin(
        K,
        &["apply", "-f", "-"],
        &block(&format!("{plain_ip}/32"), ""),
    );
    expect(
        server,
        &all,
        &url,
        &[true, true, false, true],
        "ingress from the plain client's /32",
    );
    server.apply_stdin(
        K,
        &["apply", "-f", "-"],
        &block(CIDR, &format!("\"{plain_ip}/32\"")),
    );
    expect(
        server,
        &all,
        &url,
        &[false, true, true, true],
        "ingress from the pod network except the plain client",
    );

    // Deleting every policy restores traffic.
    let restored_after = time_until(server, PLAIN, &url, false, || {
        server.ok(K, &["delete", "networkpolicy", "--all"]);
    });
    eprintln!(
        "netpol: policy deletion enforced (blocked client reaches again) {} ms after kubectl delete started",
        restored_after.as_millis()
    );
    assert!(
        restored_after < Duration::from_secs(10),
        "{restored_after:?}"
    );
    expect(
        server,
        &all,
        &url,
        &[true; 4],
        "after deleting the policies",
    );

    // Egress of the role=client pod (on the agent's node): nothing but DNS.
    let egress_blocked_after = time_until(server, CLIENT, &url, true, || {
        server.apply_stdin(
            K,
            &["create", "-f", "-"],
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {name: client-dns-only, namespace: default}\n\
             spec:\n  podSelector: {matchLabels: {role: client}}\n  policyTypes: [Egress]\n  \
             egress:\n  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n",
        );
    });
    eprintln!(
        "netpol: egress policy enforced on the agent's node {} ms after kubectl create started",
        egress_blocked_after.as_millis()
    );
    expect(
        server,
        &all,
        &url,
        &[true, false, true, true],
        "egress of the client limited to DNS",
    );
    // DNS itself still works (the kube-dns ClusterIP is DNATed to the
    // server node's address, port 53, which the policy allows).
    let svc_ip = json(server, &["get", "svc", "web", "-o", "json"])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let out = exec_cmd(
        server,
        CLIENT,
        "timeout 5 nslookup web.default.svc.cluster.local",
    )
    .output()
    .expect("nslookup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&svc_ip),
        "DNS under the egress policy: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t_there = table(&agent.node);
    assert!(
        t_there.contains(&format!("ip saddr {client_ip} jump")),
        "{t_there}"
    );

    server.ok(K, &["delete", "networkpolicy", "client-dns-only"]);
    expect(
        server,
        &all,
        &url,
        &[true; 4],
        "after deleting the egress policy",
    );
}
