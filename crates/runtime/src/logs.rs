//! Container output in the CRI log format that `kubectl logs` reads:
//! `2024-01-02T03:04:05.123456789Z stdout F line`, with `P` for a partial
//! line (one longer than [`MAX_LINE`], or cut off at EOF without a newline).
//! The writer runs in the helper (like conmon), so logs keep flowing if the
//! runtime restarts, and rotates by size.

use crate::Result;
use crate::error::Context;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Longest line written as one entry; longer ones are split into `P` entries.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// RFC 3339 with nanoseconds in UTC, as the CRI (and Go's RFC3339Nano with
/// fixed width) writes it.
pub fn timestamp(ts: jiff::Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S"),
        ts.subsec_nanosecond()
    )
}

/// One entry, newline-terminated. `line` excludes its newline.
pub fn format_entry(ts: &str, stream: Stream, partial: bool, line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + ts.len() + 12);
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

/// A parsed entry, for readers (`kubectl logs`) and tests.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub timestamp: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub content: &'a str,
}

pub fn parse_entry(line: &str) -> Option<Entry<'_>> {
    let mut it = line.splitn(4, ' ');
    let timestamp = it.next()?;
    let stream = it.next()?;
    let tag = it.next()?;
    let content = it.next().unwrap_or("");
    Some(Entry {
        timestamp,
        stream,
        partial: tag.split(':').next() == Some("P"),
        content,
    })
}

/// A size-rotated log file shared by the stdout and stderr pumps.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ctx(|| format!("open log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1),
            max_files,
        })
    }

    pub fn write_entry(&mut self, stream: Stream, partial: bool, line: &[u8]) -> Result<()> {
        let entry = format_entry(&timestamp(jiff::Timestamp::now()), stream, partial, line);
        if self.size > 0 && self.size + entry.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(&entry)
            .ctx(|| format!("write log {}", self.path.display()))?;
        self.size += entry.len() as u64;
        Ok(())
    }

    /// `log` → `log.1` → ... → `log.<max_files>` (dropped), then a fresh `log`.
    fn rotate(&mut self) -> Result<()> {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_files == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(name(self.max_files));
            for i in (1..self.max_files).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            std::fs::rename(&self.path, name(1))
                .ctx(|| format!("rotate {}", self.path.display()))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ctx(|| format!("reopen log {}", self.path.display()))?;
        self.size = 0;
        Ok(())
    }
}

/// Clients attached to a container's output (see [`frame`]).
pub type Attached = Arc<Mutex<Vec<std::os::unix::net::UnixStream>>>;

/// An attach frame: `[1 = stdout | 2 = stderr][length: u32 big-endian][bytes]`.
pub fn frame(stream: Stream, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(data.len() + 5);
    f.push(match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    });
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// Copies `reader` into `log` entry by entry until EOF, and to every
/// attached client. A client that cannot keep up (its socket has a write
/// timeout) is dropped rather than stalling the container's output.
pub fn pump(
    reader: impl Read,
    stream: Stream,
    log: Option<&Arc<Mutex<LogWriter>>>,
    attached: Option<&Attached>,
) {
    let mut r = BufReader::with_capacity(MAX_LINE, reader);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let n = match (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let complete = buf[n - 1] == b'\n';
        let line = if complete { &buf[..n - 1] } else { &buf[..] };
        if let Some(log) = log {
            let Ok(mut w) = log.lock() else { return };
            // A full disk must not kill the container: keep draining.
            let _ = w.write_entry(stream, !complete, line);
        }
        if let Some(att) = attached
            && let Ok(mut clients) = att.lock()
            && !clients.is_empty()
        {
            let f = frame(stream, &buf[..n]);
            clients.retain_mut(|c| c.write_all(&f).is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let ts = timestamp(
            jiff::Timestamp::from_second(1704164645).unwrap()
                + jiff::SignedDuration::from_nanos(123),
        );
        assert_eq!(ts, "2024-01-02T03:04:05.000000123Z");
        let e = format_entry(&ts, Stream::Stdout, false, b"hello");
        assert_eq!(e, b"2024-01-02T03:04:05.000000123Z stdout F hello\n");
        let s = String::from_utf8(e).unwrap();
        let p = parse_entry(s.trim_end()).unwrap();
        assert_eq!((p.stream, p.partial, p.content), ("stdout", false, "hello"));
    }

    #[test]
    fn pumps_partial_lines_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(LogWriter::open(&path, 200, 2).unwrap()));
        let mut input = b"one\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nlast");
        pump(&input[..], Stream::Stderr, Some(&log), None);
        // The long line rotated earlier entries away; read everything back.
        let mut all = String::new();
        for p in [
            path.with_extension("log.2"),
            path.with_extension("log.1"),
            path.clone(),
        ] {
            all.push_str(&std::fs::read_to_string(p).unwrap_or_default());
        }
        let entries: Vec<_> = all.lines().filter_map(parse_entry).collect();
        let tags: Vec<_> = entries
            .iter()
            .map(|e| (e.partial, e.content.len()))
            .collect();
        assert_eq!(
            tags,
            vec![
                (false, 3),
                (false, 3),
                (true, MAX_LINE),
                (false, 10),
                (true, 4)
            ]
        );
        assert!(entries.iter().all(|e| e.stream == "stderr"));
        assert!(!path.with_extension("log.3").exists());
    }
}
