//! Randomised robustness checks: no input may panic, and a successful
//! strategic merge never leaves a directive in its result.

use serde_json::{Map, Value, json};

use crate::apply::{apply, update_managed_fields};
use crate::fieldpath::FieldSet;
use crate::json::json_patch;
use crate::merge::merge_patch;
use crate::schema::SchemaNode;
use crate::strategic::strategic_merge;
use crate::test_schemas::{defs, node};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "labels",
    "finalizers",
    "spec",
    "replicas",
    "template",
    "containers",
    "env",
    "ports",
    "containerPort",
    "protocol",
    "image",
    "value",
    "strategy",
    "type",
    "rollingUpdate",
    "volumes",
    "emptyDir",
    "selector",
    "status",
    "x",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/env",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
    "$deleteFromPrimitiveList",
    "managedFields",
];

const STRINGS: &[&str] = &[
    "a",
    "b",
    "c",
    "replace",
    "delete",
    "merge",
    "TCP",
    "UDP",
    "apps/v1",
    "Deployment",
];

/// Iterations: `SKIFF_PATCH_FUZZ_SCALE` multiplies the defaults for a
/// longer run.
fn iterations(default: usize) -> usize {
    let scale = std::env::var("SKIFF_PATCH_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    default * scale
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match choice {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(4)),
        3 => json!(*rng.pick(STRINGS)),
        4 => json!(rng.below(3) as f64 + 0.5),
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                m.insert(rng.pick(KEYS).to_string(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
    }
}

fn object(rng: &mut Rng) -> Value {
    match value(rng, 5) {
        Value::Object(m) => Value::Object(m),
        other => json!({"spec": other}),
    }
}

fn pointer(rng: &mut Rng) -> String {
    let mut p = String::new();
    for _ in 0..rng.below(4) {
        p.push('/');
        match rng.below(3) {
            0 => p.push_str(&rng.below(3).to_string()),
            1 => p.push('-'),
            _ => p.push_str(rng.pick(KEYS).replace('/', "~1").as_str()),
        }
    }
    p
}

fn json_ops(rng: &mut Rng) -> Value {
    let ops = ["add", "remove", "replace", "move", "copy", "test", "bogus"];
    Value::Array(
        (0..rng.below(4))
            .map(|_| json!({"op": *rng.pick(&ops), "path": pointer(rng), "from": pointer(rng), "value": value(rng, 2)}))
            .collect(),
    )
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            k == "$patch"
                || k == "$retainKeys"
                || k.starts_with("$setElementOrder/")
                || k.starts_with("$deleteFromPrimitiveList/")
                || has_directive(v)
        }),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

#[test]
fn random_patches_never_panic() {
    let d = defs();
    let deploy = node(&d, "Deployment");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut merged = 0;
    for _ in 0..iterations(3000) {
        let original = object(&mut rng);
        let patch = object(&mut rng);
        for schema in [deploy, SchemaNode::none()] {
            if let Ok(out) = strategic_merge(&original, &patch, schema) {
                merged += 1;
                assert!(
                    !has_directive(&out) || has_directive(&original),
                    "{original} + {patch} = {out}"
                );
            }
        }
        let _ = merge_patch(&original, &patch);
        let _ = json_patch(&original, &json_ops(&mut rng));
        let _ = FieldSet::from_fields_v1(&patch);
    }
    // Most random patches must be valid, or this tests only error paths.
    assert!(merged > 3000, "only {merged} merges succeeded");
}

#[test]
fn random_applies_and_updates_never_panic() {
    let d = defs();
    let deploy = node(&d, "Deployment");
    let managers = ["alice", "bob", "kubectl"];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut applied, mut conflicts) = (0, 0);
    for _ in 0..iterations(1500) {
        let mut live: Option<Value> = None;
        for step in 0..4 {
            let mut config = object(&mut rng);
            if rng.below(10) > 0 {
                config["apiVersion"] = json!("apps/v1");
                config["kind"] = json!("Deployment");
            }
            let manager = *rng.pick(&managers);
            let schema = if rng.below(4) == 0 {
                SchemaNode::none()
            } else {
                deploy
            };
            let now = format!("2024-01-01T00:00:0{step}Z");
            if rng.below(2) == 0 {
                let force = rng.below(2) == 0;
                match apply(live.as_ref(), &config, manager, force, schema, &now) {
                    Ok(out) => {
                        applied += 1;
                        live = Some(out);
                    }
                    Err(crate::ApplyError::Conflict { .. }) => conflicts += 1,
                    Err(_) => {}
                }
            } else {
                live = Some(update_managed_fields(
                    live.as_ref(),
                    config,
                    manager,
                    &now,
                    schema,
                ));
            }
        }
    }
    // Enough valid applies, and conflicts among them, to mean something.
    assert!(
        applied > 500 && conflicts > 20,
        "applied {applied}, conflicts {conflicts}"
    );
}
/// Pruning is skipped when the applier still applies every field it
/// owned (see `updater::apply`); check that it would have been a no-op.
#[test]
fn skipped_pruning_would_change_nothing() {
    use crate::apply::{ManagerId, Operation, fieldset, managed, merge, updater};
    let d = defs();
    let deploy = node(&d, "Deployment");
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut checked = 0;
    for _ in 0..iterations(1500) {
        let (mut first, mut second) = (object(&mut rng), object(&mut rng));
        for o in [&mut first, &mut second] {
            o["apiVersion"] = json!("apps/v1");
            o["kind"] = json!("Deployment");
        }
        let now = "2024-01-01T00:00:00Z";
        let Ok(live) = apply(None, &first, "a", true, deploy, now) else {
            continue;
        };
        let Ok(live) = apply(Some(&live), &second, "b", true, deploy, now) else {
            continue;
        };
        // `b` applies again, a superset of its previous configuration.
        let mut again = second.clone();
        crate::merge::merge_patch_in_place(&mut again, &object(&mut rng));
        let Ok(managed) = managed::decode(live.pointer("/metadata/managedFields")) else {
            continue;
        };
        let mut managers = managed.fields;
        let id = ManagerId {
            manager: "b".into(),
            operation: Operation::Apply,
            api_version: None,
            subresource: None,
        };
        let Some(last) = managers.get(&id).map(|m| m.set.clone()) else {
            continue;
        };
        let set = fieldset::to_field_set(&again, deploy);
        if !last.difference(&set).is_empty() {
            continue;
        }
        managers.insert(
            id,
            managed::ManagedSet {
                set,
                api_version: "apps/v1".into(),
                applied: true,
            },
        );
        let merged = merge::merge(&live, &again, deploy);
        assert_eq!(
            updater::prune(merged.clone(), &managers, &last, deploy),
            merged,
            "{live} + {again}"
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} cases checked");
}
