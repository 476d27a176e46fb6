//! Custom resources through `additionalPrinterColumns`.

use serde_json::{Value, json};
use skiff_api::table::{crd_cells, crd_columns};

use super::{ago, now};

fn printer_columns() -> Value {
    json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
         "description": "Whether the widget is ready"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.template.image", "priority": 1},
        {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app\\.kubernetes\\.io/name"},
        {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSync"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])
}

fn widget() -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "creationTimestamp": ago(3 * 3600 + 600),
                     "labels": {"app.kubernetes.io/name": "gadget"}},
        "spec": {"replicas": 3, "template": {"image": "widget:2"}, "paused": false},
        "status": {
            "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}],
            "ratio": 0.75,
            "lastSync": ago(45),
        },
    })
}

#[test]
fn columns_from_the_crd() {
    let columns = crd_columns(&printer_columns());
    let summary: Vec<(&str, &str, i32)> = columns
        .iter()
        .map(|c| (c.name.as_ref(), c.type_.as_ref(), c.priority))
        .collect();
    assert_eq!(
        summary,
        [
            ("Name", "string", 0),
            ("Replicas", "integer", 0),
            ("Ready", "string", 0),
            ("Image", "string", 1),
            ("Ratio", "number", 0),
            ("Paused", "boolean", 0),
            ("App", "string", 0),
            ("Last Sync", "date", 0),
            ("Age", "date", 0),
        ]
    );
    assert_eq!(columns[0].format, "name");
    assert_eq!(
        columns[1].description,
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!(columns[2].description, "Whether the widget is ready");
    let definition = serde_json::to_value(&columns[3]).unwrap();
    assert_eq!(
        definition,
        json!({"name": "Image", "type": "string", "format": "",
               "description": "Custom resource definition column (in JSONPath format): .spec.template.image", "priority": 1})
    );
}

#[test]
fn cells_from_the_crd() {
    let cells = crd_cells(&printer_columns(), &widget(), now());
    assert_eq!(
        Value::Array(cells),
        json!([
            "w1", 3, "False", "widget:2", 0.75, false, "gadget", "45s", "3h10m"
        ])
    );
}

#[test]
fn missing_and_mistyped_values_are_null() {
    let obj = json!({
        "metadata": {"name": "w2", "creationTimestamp": ago(5)},
        "spec": {"replicas": "three", "paused": "no"},
        "status": {"lastSync": "yesterday", "ratio": 2},
    });
    let cells = crd_cells(&printer_columns(), &obj, now());
    assert_eq!(
        Value::Array(cells),
        json!(["w2", null, null, null, 2.0, null, null, "<invalid>", "5s"])
    );
}

#[test]
fn string_columns_print_any_value() {
    let columns = json!([
        {"name": "Spec", "type": "string", "jsonPath": ".spec"},
        {"name": "Count", "type": "string", "jsonPath": ".spec.count"},
        {"name": "Big", "type": "string", "jsonPath": ".spec.big"},
        {"name": "Flag", "type": "string", "jsonPath": ".spec.flag"},
        {"name": "First", "type": "string", "jsonPath": ".spec.items[0].name"},
        {"name": "Last", "type": "string", "jsonPath": ".spec.items[-1].name"},
        {"name": "All", "type": "string", "jsonPath": ".spec.items[*].name"},
        {"name": "Deep", "type": "string", "jsonPath": "..zone"},
        {"name": "Quoted", "type": "string", "jsonPath": ".metadata.annotations['example.com/owner']"},
        {"name": "Exists", "type": "string", "jsonPath": ".spec.items[?(@.primary)].name"},
        {"name": "Number", "type": "string", "jsonPath": ".spec.items[?(@.weight > 5)].name"},
    ]);
    let obj = json!({
        "metadata": {"name": "s", "annotations": {"example.com/owner": "team-a"}},
        "spec": {
            "z": 1, "a": {"html": "<b>"}, "count": 7, "big": 1.5e6, "flag": true,
            "items": [{"name": "one", "weight": 1}, {"name": "two", "primary": true, "weight": 9, "zone": "eu"}],
        },
    });
    let cells = crd_cells(&columns, &obj, now());
    assert_eq!(
        Value::Array(cells),
        json!([
            "s",
            "{\"a\":{\"html\":\"\\u003cb\\u003e\"},\"big\":1500000,\"count\":7,\"flag\":true,\"items\":[{\"name\":\"one\",\"weight\":1},{\"name\":\"two\",\"primary\":true,\"weight\":9,\"zone\":\"eu\"}],\"z\":1}",
            "7",
            "1.5e+06",
            "true",
            "one",
            "two",
            "one",
            "eu",
            "team-a",
            "two",
            "two"
        ])
    );
}

#[test]
fn without_printer_columns_there_is_an_age_column() {
    let columns = crd_columns(&json!([]));
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_ref()).collect();
    assert_eq!(names, ["Name", "Age"]);
    assert_eq!(columns[1].type_, "date");
    let cells = crd_cells(&Value::Null, &widget(), now());
    assert_eq!(Value::Array(cells), json!(["w1", "3h10m"]));
}

#[test]
fn evaluation_errors_empty_the_cell() {
    let cell = |path: &str, obj: Value| {
        let columns = json!([{"name": "X", "type": "string", "jsonPath": path}]);
        crd_cells(&columns, &obj, now())[1].clone()
    };
    let obj = json!({"spec": {
        "items": [{"ports": [80]}, {"ports": []}],
        "weights": [{"w": 1}, {"w": 2.5}],
    }});
    // The second item has no port 0: upstream fails the whole path.
    assert_eq!(cell(".spec.items[*].ports[0]", obj.clone()), Value::Null);
    assert_eq!(cell(".spec.items[0].ports[0]", obj.clone()), "80");
    assert_eq!(cell(".spec.items[5]", obj.clone()), Value::Null);
    assert_eq!(cell(".spec.items.ports", obj.clone()), Value::Null);
    // An integer and a float do not compare.
    assert_eq!(cell(".spec.weights[?(@.w==1)].w", obj.clone()), Value::Null);
    assert_eq!(
        cell(
            ".spec.weights[?(@.w>=2.0)].w",
            json!({"spec": {"weights": [{"w": 2.5}]}})
        ),
        "2.5"
    );
    assert_eq!(cell(".spec.items[-1:].ports", obj), "[]");
}
