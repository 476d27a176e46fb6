//! Field paths and sets of them, with upstream's `FieldsV1` encoding.
//!
//! Server-side apply records, per manager, the set of fields it owns. A path
//! steps through an object by field name, through associative lists by the
//! item's key fields (`k:{"name":"c"}`), through sets of scalars by value
//! (`v:"a"`), and through other lists by index (`i:0`). `FieldsV1` is that
//! set as a trie of JSON objects, where `"."` marks that the path leading to
//! the object is itself a member.
//!
//! The set is kept as the same trie (members and children per level, both
//! sorted the way upstream sorts path elements), so descending into a
//! subtree is a lookup, not a copy, and encoding is a walk.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of an object (`f:<name>`).
    Field(String),
    /// An item of an associative list, by its key fields sorted by name
    /// (`k:{"name":"c"}`).
    Key(Vec<(String, Value)>),
    /// An item of a set, by its value (`v:<json>`).
    Value(Value),
    /// An item of a list by position (`i:<n>`).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key for this element.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut s = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&json_text(&Value::String(name.clone())));
                    s.push(':');
                    s.push_str(&json_text(value));
                }
                s.push('}');
                s
            }
            PathElement::Value(v) => format!("v:{}", json_text(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key (anything but `"."`).
    pub fn from_fields_v1_key(key: &str) -> Result<PathElement, String> {
        let (kind, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("missing colon: {key}"))?;
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| e.to_string()),
            "k" => {
                let fields: Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| e.to_string())?;
                let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(PathElement::Key(fields))
            }
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("{e}")),
            _ => Err("unknown path element type".to_string()),
        }
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value_cmp(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Upstream's total order on values (`value.Compare`): numbers (compared
/// numerically across ints and floats), then strings, booleans, lists, maps,
/// and null last.
pub fn value_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x.cmp(&y),
                (_, _, Some(x), Some(y)) => x.cmp(&y),
                _ => {
                    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    x.total_cmp(&y)
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = value_cmp(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|a, b| a.0.cmp(b.0));
            ys.sort_by(|a, b| a.0.cmp(b.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                let c = xk.cmp(yk).then_with(|| value_cmp(xv, yv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Upstream's `value.ToString`, used in path strings: strings quoted, other
/// scalars bare.
fn value_text(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", value_text(v)))
                .collect();
            format!("{{{}}}", inner.join(";"))
        }
        other => json_text(other),
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_text(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_text(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path, printed the way upstream prints it in conflict messages
/// (`.spec.containers[name="c"].image`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl Path {
    /// A path of plain field names.
    pub fn fields(names: &[&str]) -> Path {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_string()))
                .collect(),
        )
    }
}

/// A set of field paths.
///
/// Invariant: no child set is empty, so emptiness is a constant-time check
/// and equality is structural.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` (the empty path is ignored: the root is never owned).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [pe] => {
                self.members.insert(pe.clone());
            }
            [pe, rest @ ..] => self.children.entry(pe.clone()).or_default().insert(rest),
        }
    }

    /// Adds the one-element path `pe`.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Adds every path of `child` under `pe`.
    pub fn attach(&mut self, pe: PathElement, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        match self.children.get_mut(&pe) {
            Some(existing) => existing.union_with(&child),
            None => {
                self.children.insert(pe, child);
            }
        }
    }

    /// Whether `path` is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [pe] => self.members.contains(pe),
            [pe, rest @ ..] => self.children.get(pe).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the one-element path `pe` is in the set.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths under `pe`, with `pe` removed (upstream's `WithPrefix`).
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// The set's one-element paths.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// The subtrees, by first element.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// The paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// The paths of `self` not in `other` (exact paths: removing a parent
    /// leaves its children).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// [`Self::difference`] in place: no copy of the paths that stay,
    /// which are most of them when `other` is a few fields (the stripped
    /// metadata, reset fields) and `self` a whole object's.
    pub fn subtract(&mut self, other: &FieldSet) {
        for m in &other.members {
            self.members.remove(m);
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.subtract(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// [`Self::recursive_difference`] in place.
    pub fn subtract_recursive(&mut self, other: &FieldSet) {
        for m in &other.members {
            self.members.remove(m);
            self.children.remove(m);
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.subtract_recursive(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// The paths of `self` that neither are in `other` nor lie under a path
    /// of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let rest = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// Every path, members of a level before its subtrees, each in sorted
    /// order (upstream's `Iterate`).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_object(false))
    }

    fn fields_v1_object(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".to_string(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let order = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(m), Some((c, _))) => (*m).cmp(*c),
            };
            match order {
                Ordering::Less => {
                    let pe = members.next().expect("peeked");
                    out.insert(pe.to_fields_v1_key(), Value::Object(Map::new()));
                }
                Ordering::Greater => {
                    let (pe, child) = children.next().expect("peeked");
                    out.insert(
                        pe.to_fields_v1_key(),
                        Value::Object(child.fields_v1_object(false)),
                    );
                }
                Ordering::Equal => {
                    members.next();
                    let (pe, child) = children.next().expect("peeked");
                    out.insert(
                        pe.to_fields_v1_key(),
                        Value::Object(child.fields_v1_object(true)),
                    );
                }
            }
        }
        out
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(m) = v else {
            return Err("FieldsV1 must be a JSON object".to_string());
        };
        let mut set = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k)?;
            let Value::Object(cm) = child else {
                return Err(format!("FieldsV1 entry {k} is not an object"));
            };
            if cm.is_empty() || cm.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let sub = FieldSet::from_fields_v1(child)?;
            if !sub.is_empty() {
                set.children.insert(pe, sub);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.to_string())
    }

    fn k(pairs: &[(&str, Value)]) -> PathElement {
        PathElement::Key(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }

    /// The in-place differences equal the copying ones, for every pair of
    /// a few overlapping sets (members, subtrees, emptied subtrees).
    #[test]
    fn subtracting_in_place_equals_the_differences() {
        let set = |paths: &[&[&str]]| {
            let mut s = FieldSet::new();
            for p in paths {
                s.insert(&p.iter().map(|n| f(n)).collect::<Vec<_>>());
            }
            s
        };
        let sets = [
            FieldSet::new(),
            set(&[&["a"], &["a", "b"], &["a", "c", "d"], &["e"]]),
            set(&[&["a"], &["e"]]),
            set(&[&["a", "b"], &["a", "c"]]),
            set(&[&["a", "c", "d"], &["x", "y"]]),
            set(&[&["metadata"], &["metadata", "name"], &["spec", "a"]]),
        ];
        for a in &sets {
            for b in &sets {
                let mut plain = a.clone();
                plain.subtract(b);
                assert_eq!(plain, a.difference(b), "{a:?} - {b:?}");
                let mut recursive = a.clone();
                recursive.subtract_recursive(b);
                assert_eq!(recursive, a.recursive_difference(b), "{a:?} -r {b:?}");
            }
        }
    }

    #[test]
    fn fields_v1_round_trip_in_upstream_shape() {
        let mut s = FieldSet::new();
        let c = k(&[("name", json!("c"))]);
        s.insert(&[f("spec"), f("containers"), c.clone()]);
        s.insert(&[f("spec"), f("containers"), c.clone(), f("name")]);
        s.insert(&[f("spec"), f("containers"), c.clone(), f("image")]);
        s.insert(&[
            f("metadata"),
            f("finalizers"),
            PathElement::Value(json!("x")),
        ]);
        s.insert(&[f("spec"), f("replicas")]);
        let v = s.to_fields_v1();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"f:metadata":{"f:finalizers":{"v:\"x\"":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}},"f:replicas":{}}}"#
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), s);
    }

    #[test]
    fn key_fields_are_sorted_and_printed_like_upstream() {
        let pe =
            PathElement::from_fields_v1_key(r#"k:{"protocol":"TCP","containerPort":80}"#).unwrap();
        assert_eq!(
            pe.to_fields_v1_key(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        let p = Path(vec![f("spec"), f("ports"), pe, f("name")]);
        assert_eq!(
            p.to_string(),
            r#".spec.ports[containerPort=80,protocol="TCP"].name"#
        );
        assert_eq!(
            Path(vec![
                f("x"),
                PathElement::Value(json!("a")),
                PathElement::Index(2)
            ])
            .to_string(),
            r#".x[="a"][2]"#
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[f("a"), f("b")]);
        a.insert(&[f("a")]);
        a.insert(&[f("c")]);
        let mut b = FieldSet::new();
        b.insert(&[f("a")]);
        let d = a.difference(&b);
        assert!(d.has(&[f("a"), f("b")]) && !d.has(&[f("a")]) && d.has(&[f("c")]));
        let r = a.recursive_difference(&b);
        assert!(!r.has(&[f("a"), f("b")]) && r.has(&[f("c")]));
        let i = a.intersection(&b);
        assert_eq!(i.paths(), vec![Path(vec![f("a")])]);
        assert_eq!(a.union(&b), a);
        assert_eq!(a.paths().len(), 3);
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        for bad in [
            json!([]),
            json!({"x": {}}),
            json!({"f:a": 1}),
            json!({"k:[1]": {}}),
            json!({"i:x": {}}),
        ] {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn value_order_matches_upstream() {
        let mut vs = vec![
            json!(null),
            json!({}),
            json!([]),
            json!(true),
            json!("a"),
            json!(1.5),
            json!(1),
        ];
        vs.sort_by(value_cmp);
        assert_eq!(
            vs,
            vec![
                json!(1),
                json!(1.5),
                json!("a"),
                json!(true),
                json!([]),
                json!({}),
                json!(null)
            ]
        );
    }
}
