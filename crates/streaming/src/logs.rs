//! `kubectl logs` from CRI log files (`skiff_runtime::logs` writes them):
//! entries `TIMESTAMP STREAM P|F CONTENT` become plain output as the kubelet
//! prints it: the content, a newline after full (`F`) entries, and with
//! `timestamps` each entry prefixed by its time in Go's RFC3339Nano (trailing
//! zeros trimmed). `tailLines` counts entries of the current file,
//! `sinceSeconds`/`sinceTime` drop older entries, `limitBytes` cuts the
//! output, and `follow` keeps reading (across rotation) while the container
//! runs.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// Query parameters of `/containerLogs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    pub fn from_query(q: Option<&str>, now: jiff::Timestamp) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let flag = matches!(&*v, "true" | "1");
            let int = |v: &str| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid value for {k}: {v:?}"))
            };
            match &*k {
                "follow" => o.follow = flag,
                "previous" => o.previous = flag,
                "timestamps" => o.timestamps = flag,
                "tailLines" => {
                    let n = int(&v)?;
                    if n < 0 {
                        return Err("tailLines: must be greater than or equal to 0".into());
                    }
                    o.tail_lines = Some(n as u64);
                }
                "limitBytes" => {
                    let n = int(&v)?;
                    if n < 1 {
                        return Err("limitBytes: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n = int(&v)?;
                    if n < 1 {
                        return Err("sinceSeconds: must be greater than 0".into());
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    since_time = Some(
                        v.parse::<jiff::Timestamp>()
                            .map_err(|e| format!("sinceTime: {e}"))?,
                    )
                }
                _ => {}
            }
        }
        o.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err("at most one of sinceTime or sinceSeconds may be specified".into());
            }
            (Some(s), None) => Some(now - jiff::SignedDuration::from_secs(s)),
            (None, t) => t,
        };
        Ok(o)
    }
}

/// Go's RFC3339Nano: fraction without trailing zeros, none when zero.
pub fn rfc3339_nano(ts: jiff::Timestamp) -> String {
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let ns = ts.subsec_nanosecond();
    if ns == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{ns:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// One parsed CRI entry (without its newline).
struct Entry<'a> {
    time: Option<jiff::Timestamp>,
    partial: bool,
    content: &'a [u8],
}

fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = parts.next()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(b"");
    let time = std::str::from_utf8(ts).ok()?.parse().ok();
    Some(Entry {
        time,
        partial: tag.split(|b| *b == b':').next() == Some(b"P"),
        content,
    })
}

/// Turns CRI entries into output, applying `since`, `timestamps` and
/// `limitBytes`. Holds a partial line between chunks.
pub struct Formatter {
    opts: LogOptions,
    carry: Vec<u8>,
    written: u64,
}

impl Formatter {
    pub fn new(opts: LogOptions) -> Self {
        Formatter {
            opts,
            carry: Vec::new(),
            written: 0,
        }
    }

    /// Whether `limitBytes` has been reached.
    pub fn done(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    fn entry(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Some(e) = parse_entry(line) else { return };
        if let (Some(since), Some(t)) = (self.opts.since, e.time)
            && t < since
        {
            return;
        }
        let start = out.len();
        if self.opts.timestamps
            && let Some(t) = e.time
        {
            out.extend_from_slice(rfc3339_nano(t).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(e.content);
        if !e.partial {
            out.push(b'\n');
        }
        if let Some(limit) = self.opts.limit_bytes {
            let room = limit.saturating_sub(self.written) as usize;
            out.truncate(start + (out.len() - start).min(room));
        }
        self.written += (out.len() - start) as u64;
    }

    /// Formats the complete lines of `data`; keeps an incomplete tail.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        self.carry.extend_from_slice(data);
        let buf = std::mem::take(&mut self.carry);
        let mut rest = &buf[..];
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            if self.done() {
                break;
            }
            self.entry(&rest[..nl], &mut out);
            rest = &rest[nl + 1..];
        }
        self.carry = rest.to_vec();
        out
    }
}

/// The byte offset where the last `n` entries of `data` start.
pub fn tail_start(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut seen = 0;
    // Skip a trailing newline: it ends the last entry.
    let end = if data.ends_with(b"\n") {
        data.len() - 1
    } else {
        data.len()
    };
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// Asks whether the container still runs (for `follow`).
pub type Running = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

fn inode(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

/// Streams the log at `path` as formatted output chunks into `tx`.
pub async fn stream(path: PathBuf, opts: LogOptions, running: Running, tx: mpsc::Sender<Bytes>) {
    let follow = opts.follow;
    let tail = opts.tail_lines;
    let mut fmt = Formatter::new(opts);
    let open = |p: &Path| std::fs::File::open(p).ok();
    let Some(mut file) = open(&path) else { return };
    let mut ino = file.metadata().ok().map(|m| m.ino());
    if let Some(n) = tail {
        let mut all = Vec::new();
        if file.read_to_end(&mut all).is_err() {
            return;
        }
        let out = fmt.push(&all[tail_start(&all, n)..]);
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut idle_checks = 0u32;
    loop {
        if fmt.done() {
            return;
        }
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(_) => return,
        };
        if n > 0 {
            idle_checks = 0;
            let out = fmt.push(&buf[..n]);
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            continue;
        }
        if !follow {
            return;
        }
        // At the end: a rotated file is replaced by a new one at `path`.
        let now_ino = inode(&path);
        if now_ino.is_some()
            && now_ino != ino
            && let Some(f) = open(&path)
        {
            file = f;
            ino = now_ino;
            continue;
        }
        // Truncated in place (copytruncate): start over.
        if let (Ok(meta), Ok(pos)) = (file.metadata(), file.stream_position())
            && meta.len() < pos
        {
            let _ = file.seek(SeekFrom::Start(0));
            continue;
        }
        idle_checks += 1;
        if idle_checks.is_multiple_of(5) && !running().await {
            // One last read: output written just before the exit.
            let mut rest = Vec::new();
            let _ = file.read_to_end(&mut rest);
            let out = fmt.push(&rest);
            if !out.is_empty() {
                let _ = tx.send(Bytes::from(out)).await;
            }
            return;
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2024-01-02T03:04:05.100000000Z stdout F one\n\
2024-01-02T03:04:06.000000000Z stderr P tw\n\
2024-01-02T03:04:06.000000001Z stderr F o\n\
2024-01-02T03:04:07.000000000Z stdout F three\n";

    fn opts(q: &str) -> LogOptions {
        let now: jiff::Timestamp = "2024-01-02T03:04:08Z".parse().unwrap();
        LogOptions::from_query(Some(q), now).unwrap()
    }

    fn render(q: &str) -> String {
        let o = opts(q);
        let tail = o.tail_lines;
        let mut f = Formatter::new(o);
        let data = match tail {
            Some(n) => &LOG[tail_start(LOG, n)..],
            None => LOG,
        };
        String::from_utf8(f.push(data)).unwrap()
    }

    #[test]
    fn plain_partial_and_timestamps() {
        assert_eq!(render(""), "one\ntwo\nthree\n");
        assert_eq!(
            render("timestamps=true"),
            "2024-01-02T03:04:05.1Z one\n2024-01-02T03:04:06Z tw2024-01-02T03:04:06.000000001Z o\n2024-01-02T03:04:07Z three\n"
        );
    }

    #[test]
    fn tail_since_and_limit() {
        assert_eq!(render("tailLines=1"), "three\n");
        assert_eq!(render("tailLines=2"), "o\nthree\n");
        assert_eq!(render("tailLines=0"), "");
        assert_eq!(render("tailLines=10"), "one\ntwo\nthree\n");
        assert_eq!(render("sinceSeconds=2"), "two\nthree\n");
        assert_eq!(render("sinceTime=2024-01-02T03:04:07Z"), "three\n");
        assert_eq!(render("limitBytes=6"), "one\ntw");
    }

    #[test]
    fn bad_options() {
        let now = jiff::Timestamp::now();
        for q in [
            "tailLines=-1",
            "limitBytes=0",
            "sinceSeconds=1&sinceTime=2024-01-02T03:04:07Z",
            "sinceTime=yesterday",
        ] {
            assert!(LogOptions::from_query(Some(q), now).is_err(), "{q}");
        }
    }

    #[test]
    fn lines_split_across_reads() {
        let mut f = Formatter::new(LogOptions::default());
        let (a, b) = LOG.split_at(20);
        let mut out = f.push(a);
        out.extend(f.push(b));
        assert_eq!(out, b"one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn follow_sees_appended_lines_and_stops_when_the_container_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, &LOG[..44]).unwrap();
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = running.clone();
        let check: Running = Arc::new(move || {
            let r = r.clone();
            Box::pin(async move { r.load(std::sync::atomic::Ordering::SeqCst) })
        });
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(stream(path.clone(), opts("follow=true"), check, tx));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"one\n"[..]));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&LOG[44..]).unwrap();
        let mut got = Vec::new();
        while got.len() < b"two\nthree\n".len() {
            got.extend_from_slice(&rx.recv().await.unwrap());
        }
        assert_eq!(got, b"two\nthree\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
