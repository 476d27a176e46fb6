//! What a pod sees of the cluster without asking: Service environment
//! variables and a resolv.conf by `dnsPolicy`, on a real node agent with
//! real containers (`cat` of the files the agent wrote into the pod).

mod support;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:dns";

fn logs_when_done(c: &Cluster, pod: &str) -> String {
    eventually(60, &format!("{pod} to finish"), || {
        let out = c.kubectl(K, &["get", "pod", pod, "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"]["phase"] == "Succeeded").then_some(())
    });
    c.ok(K, &["logs", pod])
}

#[test]
fn service_env_and_resolv_conf_follow_upstream() {
    let c = Cluster::start_node(&["--disable", "controllers,scheduler"], |data| {
        let store = Store::open(data).expect("store");
        fixtures::busybox_image(&store, IMAGE).expect("busybox image");
    });
    let node = c.node().expect("node").node_name.clone();
    let kubernetes_ip = c.ok(
        K,
        &[
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: my-web}\nspec:\n  selector: {app: none}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
    );
    let web_ip = c.ok(
        K,
        &["get", "svc", "my-web", "-o", "jsonpath={.spec.clusterIP}"],
    );
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n{extra}  containers:\n  - name: c\n    image: \"{IMAGE}\"\n    command: [sh, -c, \"env | sort; cat /etc/resolv.conf\"]\n    env: [{{name: FROM_SVC, value: \"$(MY_WEB_SERVICE_HOST)\"}}]\n"
        )
    };
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "{}---\n{}---\n{}",
            pod("plain", ""),
            pod("nolinks", "  enableServiceLinks: false\n"),
            pod(
                "custom",
                "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.1]\n    searches: [example.test]\n    options: [{name: ndots, value: \"2\"}]\n"
            ),
        ),
    );

    let plain = logs_when_done(&c, "plain");
    for want in [
        format!("KUBERNETES_SERVICE_HOST={kubernetes_ip}"),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
        format!("MY_WEB_SERVICE_HOST={web_ip}"),
        "MY_WEB_SERVICE_PORT_HTTP=80".to_string(),
        format!("MY_WEB_PORT=tcp://{web_ip}:80"),
        format!("MY_WEB_PORT_80_TCP_ADDR={web_ip}"),
        format!("FROM_SVC={web_ip}"),
        "nameserver 10.43.0.10".to_string(),
        "search default.svc.cluster.local svc.cluster.local cluster.local".to_string(),
        "options ndots:5".to_string(),
    ] {
        assert!(plain.contains(&want), "{want:?} missing from:\n{plain}");
    }

    let nolinks = logs_when_done(&c, "nolinks");
    assert!(nolinks.contains("KUBERNETES_SERVICE_HOST="), "{nolinks}");
    assert!(!nolinks.contains("MY_WEB_SERVICE_HOST="), "{nolinks}");
    // Unresolvable references stay as written.
    assert!(
        nolinks.contains("FROM_SVC=$(MY_WEB_SERVICE_HOST)"),
        "{nolinks}"
    );

    let custom = logs_when_done(&c, "custom");
    assert!(
        custom.ends_with("nameserver 192.0.2.1\nsearch example.test\noptions ndots:2\n"),
        "{custom}"
    );
}
