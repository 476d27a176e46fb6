//! The core group (`v1`): services, endpoints, config, namespaces, nodes,
//! replication controllers, quotas and component statuses. Pods live in `core_pod`, volumes in
//! `core_storage`, events in `event`. LimitRanges have no printer upstream
//! and get the default table.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{
    age, arr_at, at, container_cells, int_at, join_host_port, len_at, name, quantity, str_at,
};
use super::labels::format_labels;
use super::{AGE, Column, NAME, Printer, col, core_pod, core_storage, event, wide};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "Pod",
        columns: core_pod::POD_COLUMNS,
        cells: core_pod::pod_cells,
    },
    Printer {
        kind: "PodTemplate",
        columns: core_pod::POD_TEMPLATE_COLUMNS,
        cells: core_pod::pod_template_cells,
    },
    Printer {
        kind: "Service",
        columns: SERVICE,
        cells: service,
    },
    Printer {
        kind: "Endpoints",
        columns: ENDPOINTS,
        cells: endpoints,
    },
    Printer {
        kind: "ConfigMap",
        columns: CONFIG_MAP,
        cells: config_map,
    },
    Printer {
        kind: "Secret",
        columns: SECRET,
        cells: secret,
    },
    Printer {
        kind: "Namespace",
        columns: NAMESPACE,
        cells: namespace,
    },
    Printer {
        kind: "Node",
        columns: NODE,
        cells: node,
    },
    Printer {
        kind: "ServiceAccount",
        columns: SERVICE_ACCOUNT,
        cells: service_account,
    },
    Printer {
        kind: "Event",
        columns: event::COLUMNS,
        cells: event::core_event_cells,
    },
    Printer {
        kind: "PersistentVolume",
        columns: core_storage::PV_COLUMNS,
        cells: core_storage::pv_cells,
    },
    Printer {
        kind: "PersistentVolumeClaim",
        columns: core_storage::PVC_COLUMNS,
        cells: core_storage::pvc_cells,
    },
    Printer {
        kind: "ReplicationController",
        columns: RC,
        cells: replication_controller,
    },
    Printer {
        kind: "ResourceQuota",
        columns: RESOURCE_QUOTA,
        cells: resource_quota,
    },
    Printer {
        kind: "ComponentStatus",
        columns: COMPONENT_STATUS,
        cells: component_status,
    },
];

const SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", d::SVC_TYPE),
    col("Cluster-IP", "string", d::SVC_CLUSTER_IP),
    col("External-IP", "string", d::SVC_EXTERNAL_IPS),
    col("Port(s)", "string", d::SVC_PORTS),
    AGE,
    wide("Selector", "string", d::SVC_SELECTOR),
];

fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    // `spec.clusterIP` wins over `spec.clusterIPs[0]`, as in upstream's
    // conversion to its internal type.
    let cluster_ip = match str_at(svc, &["spec", "clusterIP"]) {
        "" => arr_at(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or(""),
        ip => ip,
    };
    let cluster_ip = if cluster_ip.is_empty() {
        "<none>"
    } else {
        cluster_ip
    };
    let ports = port_string(arr_at(svc, &["spec", "ports"]));
    vec![
        name(svc).into(),
        str_at(svc, &["spec", "type"]).into(),
        cluster_ip.into(),
        external_ip(svc).into(),
        (if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        })
        .into(),
        age(svc, now).into(),
        format_labels(at(svc, &["spec", "selector"])).into(),
    ]
}

/// `PORT(S)`: `port/protocol`, or `port:nodePort/protocol` when a node port
/// is allocated, joined with commas.
fn port_string(ports: &[Value]) -> String {
    let pieces: Vec<String> = ports
        .iter()
        .map(|p| {
            let (port, protocol) = (int_at(p, &["port"]), str_at(p, &["protocol"]));
            match int_at(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    pieces.join(",")
}

/// `EXTERNAL-IP`: external IPs, load-balancer ingress (`<pending>` until the
/// load balancer reports one) or the external name, by service type.
fn external_ip(svc: &Value) -> String {
    let external_ips: Vec<&str> = arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr_at(svc, &["status", "loadBalancer", "ingress"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.iter().map(String::as_str).collect();
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The distinct IPs (else hostnames) of load-balancer ingress points, sorted.
///
/// Upstream clips this to 16 characters only for client-side, non-wide
/// printing; the server always prints wide, so it is never clipped here.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> Vec<String> {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(str::to_string).collect()
}

const ENDPOINTS: &[Column] = &[NAME, col("Endpoints", "string", d::ENDPOINTS_SUBSETS), AGE];

fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        age(obj, now).into(),
    ]
}

/// Upstream's `formatEndpoints`: up to three `ip:port` pairs (bare IPs for
/// port-less subsets), then `+ N more...`; `<none>` without subsets.
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses.iter().take(MAX.saturating_sub(list.len())) {
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses.iter().take(MAX.saturating_sub(list.len())) {
                list.push(join_host_port(str_at(a, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if count > MAX {
        return format!("{joined} + {} more...", count - MAX);
    }
    joined
}

const CONFIG_MAP: &[Column] = &[NAME, col("Data", "string", d::CONFIGMAP_DATA), AGE];

fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    let data = len_at(obj, &["data"]) + len_at(obj, &["binaryData"]);
    vec![name(obj).into(), data.into(), age(obj, now).into()]
}

const SECRET: &[Column] = &[
    NAME,
    col("Type", "string", d::SECRET_TYPE),
    col("Data", "string", d::SECRET_DATA),
    AGE,
];

fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["type"]).into(),
        len_at(obj, &["data"]).into(),
        age(obj, now).into(),
    ]
}

const NAMESPACE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, &["status", "phase"]).into(),
        age(obj, now).into(),
    ]
}

const SERVICE_ACCOUNT: &[Column] = &[NAME, col("Secrets", "string", d::SA_SECRETS), AGE];

fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, &["secrets"]).into(),
        age(obj, now).into(),
    ]
}

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", d::NODE_KUBELET_VERSION),
    wide("Internal-IP", "string", d::NODE_ADDRESSES),
    wide("External-IP", "string", d::NODE_ADDRESSES),
    wide("OS-Image", "string", d::NODE_OS_IMAGE),
    wide("Kernel-Version", "string", d::NODE_KERNEL_VERSION),
    wide("Container-Runtime", "string", d::NODE_CONTAINER_RUNTIME),
];

fn node(obj: &Value, now: Timestamp) -> Vec<Value> {
    // Only the Ready condition is shown; when it repeats, the last one wins.
    let ready = arr_at(obj, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if super::format::bool_at(obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let roles = node_roles(obj);
    let info = |field: &str| match str_at(obj, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    vec![
        name(obj).into(),
        status.join(",").into(),
        (if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles
        })
        .into(),
        age(obj, now).into(),
        str_at(obj, &["status", "nodeInfo", "kubeletVersion"]).into(),
        node_address(obj, "InternalIP").into(),
        node_address(obj, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// `ROLES`: the sorted, distinct roles named by `node-role.kubernetes.io/<role>`
/// label keys and by the value of a `kubernetes.io/role` label.
fn node_roles(obj: &Value) -> String {
    const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
    let mut roles = BTreeSet::new();
    if let Some(labels) = at(obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix(ROLE_PREFIX) {
                if !role.is_empty() {
                    roles.insert(role);
                }
            } else if key == "kubernetes.io/role"
                && let Some(role) = value.as_str().filter(|r| !r.is_empty())
            {
                roles.insert(role);
            }
        }
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

/// The first node address of `type_`, or `<none>`.
fn node_address<'a>(obj: &'a Value, type_: &str) -> &'a str {
    arr_at(obj, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map_or("<none>", |a| str_at(a, &["address"]))
}

const RC: &[Column] = &[
    NAME,
    col("Desired", "integer", d::RC_SPEC_REPLICAS),
    col("Current", "integer", d::RC_STATUS_REPLICAS),
    col("Ready", "integer", d::RC_STATUS_READY),
    AGE,
    wide(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    wide(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    wide("Selector", "string", d::RC_SELECTOR),
];

fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj).into(),
        int_at(obj, &["spec", "replicas"]).into(),
        int_at(obj, &["status", "replicas"]).into(),
        int_at(obj, &["status", "readyReplicas"]).into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        format_labels(at(obj, &["spec", "selector"])).into(),
    ]
}

const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// `REQUEST` and `LIMIT`: `resource: used/hard` for every hard limit, sorted
/// by resource name; `limits.*` resources go to `LIMIT`, the rest to `REQUEST`.
fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = at(obj, &["status", "hard"]).and_then(Value::as_object) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used = quantity(at(obj, &["status", "used", resource.as_str()]));
            let entry = format!("{resource}: {used}/{}", quantity(hard.get(resource)));
            if resource.starts_with("limits.") {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
    }
    vec![
        name(obj).into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        age(obj, now).into(),
    ]
}

const COMPONENT_STATUS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

/// The first `Healthy` condition decides; `Unknown` without one.
fn component_status(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let healthy = arr_at(obj, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![
        name(obj).into(),
        status.into(),
        message.into(),
        error.into(),
    ]
}
