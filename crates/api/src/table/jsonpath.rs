//! The JSONPath subset that CRD `additionalPrinterColumns` use, evaluated the
//! way upstream's client-go `jsonpath` does with missing keys allowed.
//!
//! Supported: fields (`.spec.replicas`, with `\.` escaping a dot in a key),
//! bracketed keys (`['app.kubernetes.io/name']`), indexes (`[0]`, `[-1]`),
//! slices (`[1:3]`), wildcards (`.*`, `[*]`), recursive descent (`..name`) and
//! filters (`[?(@.type=="Ready")]`, with `==`, `!=`, `<`, `<=`, `>`, `>=`
//! against a string, number or boolean literal, or an existence test
//! `[?(@.ready)]`). Missing keys select nothing; like upstream, indexing a
//! non-array, an index out of range or an impossible comparison fails the
//! whole path.

use serde_json::Value;

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Recursive,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Step>,
    op: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    Path(Vec<Step>),
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a path such as `.status.conditions[?(@.type=="Ready")].status`.
    /// A surrounding `{...}` and a leading `$` are accepted and ignored.
    pub(super) fn parse(path: &str) -> Option<JsonPath> {
        let path = path.trim();
        let path = path
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(path)
            .trim();
        let path = path.strip_prefix('$').unwrap_or(path);
        let mut parser = Parser {
            s: path.as_bytes(),
            i: 0,
        };
        let steps = parser.steps(false)?;
        (parser.i == parser.s.len()).then_some(JsonPath(steps))
    }

    /// Every value the path selects in `root`, in document order.
    /// `None` when evaluation fails, which upstream shows as an empty cell.
    pub(super) fn find<'a>(&self, root: &'a Value) -> Option<Vec<&'a Value>> {
        eval(&self.0, vec![root])
    }
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.s[self.i..].starts_with(prefix.as_bytes()) {
            self.i += prefix.len();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    /// Steps until the end of input, or (inside a filter) until a delimiter.
    fn steps(&mut self, in_filter: bool) -> Option<Vec<Step>> {
        let mut steps = Vec::new();
        // A path may start with a bare field name (`spec.replicas`).
        if self.peek().is_some_and(|c| c != b'.' && c != b'[') && !in_filter {
            steps.push(self.field()?);
        }
        loop {
            match self.peek() {
                None => break,
                Some(b'.') if self.s.get(self.i + 1) == Some(&b'.') => {
                    self.i += 2;
                    steps.push(Step::Recursive);
                    if self.peek().is_some_and(|c| c != b'[') {
                        steps.push(self.field()?);
                    }
                }
                Some(b'.') => {
                    self.i += 1;
                    steps.push(self.field()?);
                }
                Some(b'[') => {
                    self.i += 1;
                    steps.push(self.bracket()?);
                }
                Some(_) if in_filter => break,
                Some(_) => return None,
            }
        }
        Some(steps)
    }

    /// A field name up to the next unescaped terminator; `*` is a wildcard.
    fn field(&mut self) -> Option<Step> {
        let mut name = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'\\' => {
                    name.push(*self.s.get(self.i + 1)?);
                    self.i += 2;
                }
                b'.' | b'[' | b']' | b'(' | b')' | b'=' | b'!' | b'<' | b'>' | b' ' | b'\t' => {
                    break;
                }
                _ => {
                    name.push(c);
                    self.i += 1;
                }
            }
        }
        let name = String::from_utf8(name).ok()?;
        match name.as_str() {
            "" => None,
            "*" => Some(Step::Wildcard),
            _ => Some(Step::Field(name)),
        }
    }

    /// The inside of `[...]`, after the `[`.
    fn bracket(&mut self) -> Option<Step> {
        self.skip_spaces();
        let step = match self.peek()? {
            b'?' => {
                self.i += 1;
                self.skip_spaces();
                if !self.eat("(") {
                    return None;
                }
                let filter = self.filter()?;
                self.skip_spaces();
                if !self.eat(")") {
                    return None;
                }
                Step::Filter(filter)
            }
            b'*' => {
                self.i += 1;
                Step::Wildcard
            }
            b'\'' | b'"' => match self.literal()? {
                Value::String(s) => Step::Field(s),
                _ => return None,
            },
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|c| c != b']') {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?.trim();
                match text.split_once(':') {
                    Some((from, to)) => Step::Slice(bound(from)?, bound(to.split(':').next()?)?),
                    None => Step::Index(text.parse().ok()?),
                }
            }
        };
        self.skip_spaces();
        self.eat("]").then_some(step)
    }

    /// `@.path [op operand]` inside `?( ... )`.
    fn filter(&mut self) -> Option<Filter> {
        self.skip_spaces();
        if !self.eat("@") {
            return None;
        }
        let left = self.steps(true)?;
        self.skip_spaces();
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(text, _)| self.eat(text));
        let Some((_, op)) = op else {
            return Some(Filter { left, op: None });
        };
        self.skip_spaces();
        let operand = if self.eat("@") {
            Operand::Path(self.steps(true)?)
        } else {
            Operand::Literal(self.literal()?)
        };
        Some(Filter {
            left,
            op: Some((op, operand)),
        })
    }

    /// A quoted string, a number, or `true`/`false`.
    fn literal(&mut self) -> Option<Value> {
        match self.peek()? {
            quote @ (b'\'' | b'"') => {
                self.i += 1;
                let start = self.i;
                while self.peek()? != quote {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .to_string();
                self.i += 1;
                Some(Value::String(text))
            }
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                match text {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => serde_json::from_str::<serde_json::Number>(text)
                        .ok()
                        .map(Value::Number),
                }
            }
        }
    }
}

/// One end of a slice: empty means open.
fn bound(text: &str) -> Option<Option<i64>> {
    match text.trim() {
        "" => Some(None),
        t => t.parse().ok().map(Some),
    }
}

/// Applies the steps in turn. `None` is an evaluation error, which upstream
/// reports for the whole path: indexing or filtering a non-array, an index
/// out of bounds, or a filter comparing values that do not compare.
fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Option<Vec<&'a Value>> {
    for step in steps {
        let mut next = Vec::new();
        for value in current.into_iter().filter(|v| !v.is_null()) {
            apply(step, value, &mut next)?;
        }
        current = next;
    }
    Some(current)
}

fn apply<'a>(step: &Step, value: &'a Value, out: &mut Vec<&'a Value>) -> Option<()> {
    match (step, value) {
        (Step::Field(name), Value::Object(map)) => out.extend(map.get(name)),
        (Step::Wildcard, Value::Object(map)) => out.extend(map.values()),
        (Step::Wildcard, Value::Array(items)) => out.extend(items),
        (Step::Index(i), Value::Array(items)) => {
            let i = if *i < 0 { *i + items.len() as i64 } else { *i };
            out.push(items.get(usize::try_from(i).ok()?)?);
        }
        (Step::Slice(from, to), Value::Array(items)) => {
            let len = items.len() as i64;
            let from = from.map_or(0, |b| if b < 0 { b + len } else { b });
            let to = to.map_or(len, |b| if b < 0 { b + len } else { b });
            if from == to {
                return Some(());
            }
            if from < 0 || from >= len || to < 0 || to > len || from > to {
                return None;
            }
            out.extend(&items[from as usize..to as usize]);
        }
        (Step::Filter(filter), Value::Array(items)) => {
            for item in items {
                if matches(filter, item)? {
                    out.push(item);
                }
            }
        }
        (Step::Index(_) | Step::Slice(..) | Step::Filter(_), _) => return None,
        (Step::Recursive, _) => descendants(value, out),
        _ => {}
    }
    Some(())
}

/// `value` and everything nested in it, parents before children.
fn descendants<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(value);
    match value {
        Value::Object(map) => map.values().for_each(|v| descendants(v, out)),
        Value::Array(items) => items.iter().for_each(|v| descendants(v, out)),
        _ => {}
    }
}

fn matches(filter: &Filter, item: &Value) -> Option<bool> {
    let lefts = eval(&filter.left, vec![item]);
    let Some((op, operand)) = &filter.op else {
        return Some(lefts.is_some_and(|l| !l.is_empty()));
    };
    let lefts = lefts?;
    let left = match lefts.as_slice() {
        [] => return Some(false),
        [left] => *left,
        _ => return None,
    };
    let rights = match operand {
        Operand::Literal(v) => vec![v],
        Operand::Path(steps) => eval(steps, vec![item])?,
    };
    let right = match rights.as_slice() {
        [] => return Some(false),
        [right] => *right,
        _ => return None,
    };
    let ord = compare(left, right)?;
    if left.is_boolean() && !matches!(op, Op::Eq | Op::Ne) {
        return None;
    }
    Some(match op {
        Op::Eq => ord.is_eq(),
        Op::Ne => ord.is_ne(),
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
    })
}

/// Orders two scalars of the same kind (Go template comparison): integers
/// with integers, floats with floats, strings with strings, booleans only
/// for equality. Anything else is an error.
fn compare(left: &Value, right: &Value) -> Option<std::cmp::Ordering> {
    match (left, right) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ if a.is_f64() && b.is_f64() => a.as_f64()?.partial_cmp(&b.as_f64()?),
            _ => None,
        },
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}
