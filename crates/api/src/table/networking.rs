//! `networking.k8s.io/v1`: Ingresses, IngressClasses, NetworkPolicies,
//! ServiceCIDRs and IPAddresses.

use jiff::Timestamp;
use serde_json::Value;

use super::core::load_balancer_ingress;
use super::descriptions as d;
use super::format::{age, arr_at, at, name, opt_str_at, str_at};
use super::labels::format_label_selector;
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "Ingress",
        columns: INGRESS,
        cells: ingress,
    },
    Printer {
        kind: "IngressClass",
        columns: INGRESS_CLASS,
        cells: ingress_class,
    },
    Printer {
        kind: "NetworkPolicy",
        columns: NETWORK_POLICY,
        cells: network_policy,
    },
    Printer {
        kind: "ServiceCIDR",
        columns: SERVICE_CIDR,
        cells: service_cidr,
    },
    Printer {
        kind: "IPAddress",
        columns: IP_ADDRESS,
        cells: ip_address,
    },
];

const INGRESS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let address = load_balancer_ingress(arr_at(obj, &["status", "loadBalancer", "ingress"]));
    // Upstream only knows whether TLS is configured, not the real ports.
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj).into(),
        opt_str_at(obj, &["spec", "ingressClassName"])
            .unwrap_or("<none>")
            .into(),
        format_hosts(arr_at(obj, &["spec", "rules"])).into(),
        address.join(",").into(),
        ports.into(),
        age(obj, now).into(),
    ]
}

/// Upstream's `formatHosts`: the first three non-empty rule hosts, `+ N
/// more...` counting every rule past the third, `*` when no rule names one.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        // Upstream subtracts from the number of rules, hosts or not.
        return format!("{joined} + {} more...", rules.len() - MAX);
    }
    joined
}

const INGRESS_CLASS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    // `Kind[.apiGroup]/name`.
    let parameters = match at(obj, &["spec", "parameters"]) {
        Some(p) => {
            let mut s = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str_at(p, &["apiGroup"]) {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "controller"]).into(),
        parameters.into(),
        age(obj, now).into(),
    ]
}

const NETWORK_POLICY: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", d::NETPOL_POD_SELECTOR),
    AGE,
];

fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    // The pod selector is a struct, not a pointer: missing means empty.
    let empty = Value::Object(Default::default());
    let selector = at(obj, &["spec", "podSelector"]).unwrap_or(&empty);
    vec![
        name(obj).into(),
        format_label_selector(Some(selector)).into(),
        age(obj, now).into(),
    ]
}

const SERVICE_CIDR: &[Column] = &[NAME, col("CIDRs", "string", d::SERVICE_CIDR_CIDRS), AGE];

fn service_cidr(obj: &Value, now: Timestamp) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(obj, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![
        name(obj).into(),
        cidrs.join(",").into(),
        age(obj, now).into(),
    ]
}

/// Upstream declares no `Age` column here yet sends an age cell after the
/// declared ones, which kubectl ignores; rows here match the columns.
const IP_ADDRESS: &[Column] = &[NAME, col("ParentRef", "string", d::IPADDRESS_PARENT_REF)];

/// `PARENTREF`: `resource[.group]/[namespace/]name`, lower-cased resource.
fn ip_address(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let parent = match at(obj, &["spec", "parentRef"]) {
        Some(p) => {
            let (group, resource) = (str_at(p, &["group"]), str_at(p, &["resource"]));
            let mut s = if group.is_empty() {
                resource.to_lowercase()
            } else {
                format!("{resource}.{group}").to_lowercase()
            };
            let ns = str_at(p, &["namespace"]);
            if !ns.is_empty() {
                s = format!("{s}/{ns}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![name(obj).into(), parent.into()]
}
