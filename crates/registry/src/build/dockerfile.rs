//! The Dockerfile subset Skiff builds: parsing into instructions with
//! their line numbers, and `$VAR`/`${VAR}` substitution.

use std::collections::BTreeMap;

/// A parse or build error, always naming the Dockerfile line.
#[derive(Debug, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// One instruction: its keyword (upper case), `--flags`, and arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub flags: BTreeMap<String, String>,
    pub args: Args,
    /// The text as written (continuations joined): the cache key's part.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    /// `["a", "b"]`
    Exec(Vec<String>),
    /// Everything after the keyword (and flags), as written.
    Shell(String),
}

impl Args {
    /// Exec form as is; shell form as `/bin/sh -c TEXT`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Args::Exec(v) => v.clone(),
            Args::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }

    /// Whitespace-separated words (exec form: the elements).
    pub fn words(&self) -> Vec<String> {
        match self {
            Args::Exec(v) => v.clone(),
            Args::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

pub const KNOWN: &[&str] = &[
    "FROM",
    "COPY",
    "ADD",
    "RUN",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "LABEL",
    "CMD",
    "ENTRYPOINT",
    "VOLUME",
    "STOPSIGNAL",
];

pub fn parse(text: &str) -> Result<Vec<Instruction>, ParseError> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if !pending.is_empty() && trimmed.starts_with('#') {
            continue; // comments inside continuations are dropped
        }
        if pending.is_empty() {
            start_line = lineno;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        out.push(parse_one(start_line, pending.trim())?);
        pending.clear();
    }
    if !pending.is_empty() {
        out.push(parse_one(start_line, pending.trim())?);
    }
    match out.first() {
        None => Err(ParseError {
            line: 1,
            message: "no instructions".into(),
        }),
        Some(first) if first.keyword != "FROM" && first.keyword != "ARG" => Err(ParseError {
            line: first.line,
            message: format!("the first instruction must be FROM, not {}", first.keyword),
        }),
        _ => Ok(out),
    }
}

fn parse_one(line: usize, text: &str) -> Result<Instruction, ParseError> {
    let (kw, mut rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = kw.to_ascii_uppercase();
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(ParseError {
            line,
            message: format!("unknown instruction: {kw}"),
        });
    }
    let mut flags = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        let Some(flag) = rest.strip_prefix("--") else {
            break;
        };
        let (f, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        flags.insert(k.to_string(), v.to_string());
        rest = after;
    }
    let rest = rest.trim();
    let args = if rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => Args::Exec(v),
            Err(_) => Args::Shell(rest.to_string()),
        }
    } else {
        Args::Shell(rest.to_string())
    };
    if rest.is_empty() && keyword != "CMD" && keyword != "ENTRYPOINT" {
        return Err(ParseError {
            line,
            message: format!("{keyword} needs arguments"),
        });
    }
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
        text: text.to_string(),
    })
}

/// Replaces `$NAME` and `${NAME}` (and `${NAME:-default}`) from `vars`;
/// `\$` is a literal dollar. Unknown names become empty, as in Docker.
pub fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\' && b.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if b[i] != '$' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&'{')
            && let Some(end) = b[i + 2..].iter().position(|&c| c == '}')
        {
            let inner: String = b[i + 2..i + 2 + end].iter().collect();
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner.clone(), None),
            };
            match vars.get(&name) {
                Some(v) if !v.is_empty() || default.is_none() => out.push_str(v),
                _ => out.push_str(&default.unwrap_or_default()),
            }
            i += 3 + end;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
            j += 1;
        }
        if j == start {
            out.push('$');
            i += 1;
            continue;
        }
        let name: String = b[start..j].iter().collect();
        out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
        i = j;
    }
    out
}

/// `KEY=VALUE KEY2="a b"` pairs (or the legacy `KEY VALUE` form).
pub fn key_values(s: &str) -> Vec<(String, String)> {
    if !s.contains('=') {
        return match s.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![(s.to_string(), String::new())],
        };
    }
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut word = String::new();
        let mut quote = None;
        while i < chars.len() {
            let c = chars[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    word.push(chars[i]);
                }
                None if c.is_whitespace() => break,
                None => word.push(c),
            }
            i += 1;
        }
        if let Some((k, v)) = word.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        } else if !word.is_empty() {
            out.push((word, String::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms_and_continuations() {
        let df = "# comment\nFROM busybox AS base\n\nRUN echo a \\\n  && echo b\nCMD [\"httpd\", \"-f\"]\nCOPY --chown=1:2 a b /dst/\nENTRYPOINT echo hi\n";
        let ins = parse(df).unwrap();
        assert_eq!(ins.len(), 5);
        assert_eq!(ins[1].line, 4);
        assert_eq!(ins[1].args, Args::Shell("echo a  && echo b".into()));
        assert_eq!(ins[2].args, Args::Exec(vec!["httpd".into(), "-f".into()]));
        assert_eq!(ins[3].flags.get("chown").map(String::as_str), Some("1:2"));
        assert_eq!(ins[3].args.words(), ["a", "b", "/dst/"]);
        assert_eq!(ins[4].args.argv(), ["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn unknown_instruction_names_its_line() {
        let err = parse("FROM scratch\nCOPY a /\nFROBNICATE x\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .contains("Dockerfile line 3: unknown instruction: FROBNICATE"),
            "{err}"
        );
        assert_eq!(parse("RUN x\n").unwrap_err().line, 1);
    }

    #[test]
    fn substitution_and_key_values() {
        let vars: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(substitute("$A-${A}-${B:-d}-\\$A-$", &vars), "1-1-d-$A-$");
        assert_eq!(
            key_values(r#"A=1 B="two words" C=x\ y"#),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x y".into())
            ]
        );
        assert_eq!(
            key_values("A hello world"),
            vec![("A".into(), "hello world".into())]
        );
    }
}
