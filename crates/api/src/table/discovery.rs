//! `discovery.k8s.io/v1`: EndpointSlices.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, at, int_at, list_with_more, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[Printer {
    kind: "EndpointSlice",
    columns: ENDPOINT_SLICE,
    cells: endpoint_slice,
}];

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col("AddressType", "string", d::ENDPOINTSLICE_ADDRESS_TYPE),
    col("Ports", "string", d::ENDPOINTSLICE_PORTS),
    col("Endpoints", "string", d::ENDPOINTSLICE_ENDPOINTS),
    AGE,
];

/// At most this many ports or addresses are listed before `+ N more...`.
const MAX: usize = 3;

fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    // A port prints as its number, else its name, else `*`.
    let ports = arr_at(obj, &["ports"]);
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match at(p, &["port"]) {
            Some(_) => int_at(p, &["port"]).to_string(),
            None => at(p, &["name"])
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
        })
        .collect();
    let addresses: Vec<&Value> = arr_at(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]))
        .collect();
    let address_list: Vec<String> = addresses
        .iter()
        .take(MAX)
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        name(obj).into(),
        str_at(obj, &["addressType"]).into(),
        list_with_more(&port_list, ports.len(), MAX).into(),
        list_with_more(&address_list, addresses.len(), MAX).into(),
        age(obj, now).into(),
    ]
}
