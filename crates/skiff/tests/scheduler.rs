//! The scheduler, driven through the real kubectl against a real
//! `skiff server --disable agent`: nodes are Node objects created here
//! (Ready, with capacity), pods are bound by the scheduler through
//! `pods/binding`, and failures show upstream's PodScheduled message and
//! FailedScheduling events.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Backend, Cluster};

const K: u32 = 33;

fn start() -> Cluster {
    Cluster::start_with(Backend::Memory, &["--disable", "agent,controllers"])
}

/// Polls `check` until it returns Some, failing after 20 s.
#[track_caller]
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Ready node with `cpu` cores, 8Gi, 110 pods, plus labels and taints
/// (YAML flow sequences/maps).
fn node(c: &Cluster, name: &str, cpu: &str, labels: &str, taints: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: \"{name}\"{labels}}}\n\
         spec:\n  taints: {taints}\n\
         status:\n  capacity: {{cpu: \"{cpu}\", memory: 8Gi, pods: \"110\"}}\n  allocatable: {{cpu: \"{cpu}\", memory: 8Gi, pods: \"110\"}}\n  \
         conditions: [{{type: Ready, status: \"True\"}}]\n"
    );
    c.apply_stdin(K, &["create", "-f", "-"], &yaml);
}

fn pod_yaml(name: &str, cpu: &str, extra_meta: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{extra_meta}spec:\n{extra_spec}  containers:\n  - name: c\n    image: registry.invalid/pause:1\n    resources: {{requests: {{cpu: \"{cpu}\"}}}}\n"
    )
}

fn create(c: &Cluster, yaml: &str) {
    c.apply_stdin(K, &["create", "-f", "-"], yaml);
}

fn get_pod(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(K, &["get", "pod", name, "-o", "json"])).expect("pod JSON")
}

fn node_of(c: &Cluster, name: &str) -> Option<String> {
    get_pod(c, name)
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .map(String::from)
}

#[track_caller]
fn bound(c: &Cluster, name: &str) -> String {
    eventually(&format!("{name} is bound"), || node_of(c, name))
}

/// The PodScheduled=False message, once there is one.
#[track_caller]
fn unschedulable_message(c: &Cluster, name: &str) -> String {
    eventually(&format!("{name} is reported unschedulable"), || {
        let pod = get_pod(c, name);
        let cond = pod
            .pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")?
            .clone();
        (cond["status"] == "False" && cond["reason"] == "Unschedulable")
            .then(|| cond["message"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn binds_to_the_only_fitting_node() {
    let c = start();
    node(&c, "small", "1", "", "[]");
    node(&c, "big", "4", "", "[]");
    create(&c, &pod_yaml("p", "2", "", ""));
    assert_eq!(bound(&c, "p"), "big");
    let pod = get_pod(&c, "p");
    let cond = pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .expect("PodScheduled condition");
    assert_eq!(cond["status"], "True");
    // The binding subresource refuses a second binding, as upstream.
    let body = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"small"}}"#;
    let out = c.kubectl_with(
        K,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/p/binding",
            "-f",
            "-",
        ],
        Some(body),
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already assigned to node"), "{err}");
    assert_eq!(node_of(&c, "p").as_deref(), Some("big"));
}

#[test]
fn too_big_stays_pending_with_upstreams_message_and_event() {
    let c = start();
    node(&c, "worker", "1", "", "[]");
    let cp = "[{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]";
    node(&c, "cp1", "4", "", cp);
    node(&c, "cp2", "4", "", cp);
    create(&c, &pod_yaml("huge", "2", "", ""));
    let msg = unschedulable_message(&c, "huge");
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    assert_eq!(node_of(&c, "huge"), None);
    let ev = eventually("a FailedScheduling event", || {
        let list: Value = serde_json::from_str(&c.ok(K, &["get", "events", "-o", "json"])).ok()?;
        list["items"]
            .as_array()?
            .iter()
            .find(|e| e["reason"] == "FailedScheduling" && e["involvedObject"]["name"] == "huge")
            .cloned()
    });
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["message"].as_str(), Some(msg.as_str()));
    // A node that fits arrives: the pod is scheduled without waiting for
    // the periodic flush.
    node(&c, "roomy", "4", "", "[]");
    assert_eq!(bound(&c, "huge"), "roomy");
}

#[test]
fn taints_selectors_and_node_affinity() {
    let c = start();
    node(
        &c,
        "gpu",
        "4",
        ", disk: ssd",
        "[{key: dedicated, value: gpu, effect: NoSchedule}]",
    );
    node(
        &c,
        "ssd",
        "4",
        ", disk: ssd, topology.kubernetes.io/zone: z2",
        "[]",
    );
    node(
        &c,
        "hdd",
        "4",
        ", disk: hdd, topology.kubernetes.io/zone: z1",
        "[]",
    );
    // Tolerating the taint and selecting the only node with it and ssd.
    create(
        &c,
        &pod_yaml(
            "tolerant",
            "100m",
            "",
            "  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [gpu]}]}]\n",
        ),
    );
    assert_eq!(bound(&c, "tolerant"), "gpu");
    // nodeSelector disk=ssd without the toleration: only the ssd node.
    create(
        &c,
        &pod_yaml("selector", "100m", "", "  nodeSelector: {disk: ssd}\n"),
    );
    assert_eq!(bound(&c, "selector"), "ssd");
    // Required node affinity on a zone.
    create(
        &c,
        &pod_yaml(
            "zoned",
            "100m",
            "",
            "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: [{matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [z1]}]}]\n",
        ),
    );
    assert_eq!(bound(&c, "zoned"), "hdd");
    // Nothing matches: upstream's reasons, one per node.
    create(
        &c,
        &pod_yaml("nowhere", "100m", "", "  nodeSelector: {disk: nvme}\n"),
    );
    assert_eq!(
        unschedulable_message(&c, "nowhere"),
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn topology_spread_and_anti_affinity() {
    let c = start();
    node(&c, "a1", "8", ", topology.kubernetes.io/zone: a", "[]");
    node(&c, "a2", "8", ", topology.kubernetes.io/zone: a", "[]");
    node(&c, "b1", "8", ", topology.kubernetes.io/zone: b", "[]");
    let spread = "  topologySpreadConstraints:\n  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}\n";
    let mut zones = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..4 {
        let name = format!("web-{i}");
        create(
            &c,
            &pod_yaml(&name, "100m", "  labels: {app: web}\n", spread),
        );
        let n = bound(&c, &name);
        *zones.entry(n[..1].to_string()).or_default() += 1;
    }
    assert_eq!(zones.get("a"), Some(&2), "{zones:?}");
    assert_eq!(zones.get("b"), Some(&2), "{zones:?}");
    // Required anti-affinity per hostname: one per node, the fourth waits.
    let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - {labelSelector: {matchLabels: {app: db}}, topologyKey: kubernetes.io/hostname}\n";
    let mut hosts = std::collections::BTreeSet::new();
    for i in 0..3 {
        let name = format!("db-{i}");
        create(&c, &pod_yaml(&name, "100m", "  labels: {app: db}\n", anti));
        hosts.insert(bound(&c, &name));
    }
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    create(&c, &pod_yaml("db-3", "100m", "  labels: {app: db}\n", anti));
    let msg = unschedulable_message(&c, "db-3");
    assert!(
        msg.starts_with(
            "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
        ),
        "{msg}"
    );
}

#[test]
fn preemption_evicts_a_lower_priority_pod() {
    let c = start();
    create(
        &c,
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\n\
         apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
    );
    node(&c, "only", "2", "", "[]");
    create(
        &c,
        &pod_yaml("low", "1500m", "", "  priorityClassName: low\n"),
    );
    assert_eq!(bound(&c, "low"), "only");
    create(
        &c,
        &pod_yaml("high", "1500m", "", "  priorityClassName: high\n"),
    );
    // The victim is deleted (gracefully: with no kubelet it stays
    // terminating) and the preemptor nominated to its node.
    eventually("the low-priority pod is being deleted", || {
        get_pod(&c, "low")
            .pointer("/metadata/deletionTimestamp")
            .map(|_| ())
    });
    eventually("high is nominated", || {
        (get_pod(&c, "high")
            .pointer("/status/nominatedNodeName")?
            .as_str()?
            == "only")
            .then_some(())
    });
    // The kubelet's part: the victim's containers are gone.
    c.ok(K, &["delete", "pod", "low", "--grace-period=0", "--force"]);
    assert_eq!(bound(&c, "high"), "only");
}

#[test]
fn preemption_spares_pods_a_disruption_budget_protects() {
    let c = start();
    create(
        &c,
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\n\
         apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: mid}\nvalue: 50\n---\n\
         apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n---\n\
         apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db}\n\
         spec: {minAvailable: 1, selector: {matchLabels: {app: db}}}\n",
    );
    node(&c, "a", "1", "", "[]");
    create(
        &c,
        &pod_yaml(
            "guarded",
            "1",
            "  labels: {app: db}\n",
            "  priorityClassName: low\n",
        ),
    );
    assert_eq!(bound(&c, "guarded"), "a");
    node(&c, "b", "1", "", "[]");
    create(&c, &pod_yaml("free", "1", "", "  priorityClassName: mid\n"));
    assert_eq!(bound(&c, "free"), "b");
    // Without the budget the cheaper victim would be `guarded` (priority
    // 10); the budget allows no disruption, so `free` goes instead.
    create(
        &c,
        &pod_yaml("high", "1", "", "  priorityClassName: high\n"),
    );
    eventually("high is nominated to b", || {
        (get_pod(&c, "high")
            .pointer("/status/nominatedNodeName")?
            .as_str()?
            == "b")
            .then_some(())
    });
    assert!(
        get_pod(&c, "free")
            .pointer("/metadata/deletionTimestamp")
            .is_some()
    );
    assert!(
        get_pod(&c, "guarded")
            .pointer("/metadata/deletionTimestamp")
            .is_none()
    );
}

#[test]
fn other_scheduler_names_are_left_alone() {
    let c = start();
    node(&c, "node1", "4", "", "[]");
    create(&c, &pod_yaml("mine", "100m", "", ""));
    create(
        &c,
        &pod_yaml("theirs", "100m", "", "  schedulerName: someone-else\n"),
    );
    assert_eq!(bound(&c, "mine"), "node1");
    std::thread::sleep(Duration::from_secs(1));
    let pod = get_pod(&c, "theirs");
    assert_eq!(pod.pointer("/spec/nodeName"), None);
    assert!(
        pod.pointer("/status/conditions").is_none(),
        "untouched: {pod}"
    );
}
