//! exec and attach ("remotecommand"), independent of the transport: a
//! [`Session`] is stdin/stdout/stderr/error/resize, built from a WebSocket
//! channel connection ([`from_websocket`]) or from SPDY streams
//! ([`from_spdy`]), and driven by [`run_exec`] or [`run_attach`].
//!
//! Protocol versions: from v4 on the error channel carries a `Status`
//! (with the `ExitCode` cause for non-zero exits); v1-v3 carry plain
//! text. v3 adds the resize channel; v5 (WebSocket) adds closing stdin.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::channel::{self, ChannelConn};
use crate::spdy;

/// SPDY `X-Stream-Protocol-Version`s we speak, newest first.
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// What the client asked for in the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Options {
    pub fn from_query(q: Option<&str>) -> Options {
        let mut o = Options::default();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let flag = matches!(&*v, "true" | "1");
            match &*k {
                "command" => o.command.push(v.into_owned()),
                "input" | "stdin" => o.stdin = flag,
                "output" | "stdout" => o.stdout = flag,
                "error" | "stderr" => o.stderr = flag,
                "tty" => o.tty = flag,
                _ => {}
            }
        }
        // A terminal has one output; stderr goes to it.
        if o.tty {
            o.stderr = false;
        }
        o
    }

    /// Upstream's check: a session must stream something.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.stdin && !self.stdout && !self.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr");
        }
        Ok(())
    }
}

/// Where output goes: a WebSocket channel or a SPDY stream.
#[derive(Clone)]
pub enum Sink {
    Ws(channel::Sender),
    Spdy(spdy::StreamWriter),
}

impl Sink {
    pub async fn write(&self, data: Bytes) -> std::io::Result<()> {
        match self {
            Sink::Ws(s) => s.write(data).await,
            Sink::Spdy(s) => s.write(data).await,
        }
    }

    pub async fn close(&self) {
        match self {
            // WebSocket output channels end with the connection.
            Sink::Ws(_) => {}
            Sink::Spdy(s) => s.close().await,
        }
    }
}

/// Where input comes from; `None` is end of input.
pub enum Source {
    Ws(mpsc::UnboundedReceiver<Bytes>),
    Spdy(spdy::StreamReader),
}

impl Source {
    pub async fn recv(&mut self) -> Option<Bytes> {
        match self {
            Source::Ws(r) => r.recv().await,
            Source::Spdy(r) => r.recv().await,
        }
    }
}

/// Terminal size as the resize channel sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Parses resize messages: JSON objects, possibly several per chunk and
/// split across chunks (SPDY carries them as a stream).
#[derive(Default)]
pub struct ResizeDecoder {
    buf: Vec<u8>,
}

impl ResizeDecoder {
    pub fn push(&mut self, data: &[u8]) -> Vec<TermSize> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<TermSize>();
        loop {
            match it.next() {
                Some(Ok(s)) => {
                    out.push(s);
                    consumed = it.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => {
                    // Garbage: drop what we have rather than stall.
                    consumed = self.buf.len();
                    break;
                }
                None => {
                    consumed = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        out
    }
}

/// One exec/attach session's streams.
pub struct Session {
    pub version: u8,
    /// The client asked for a terminal.
    pub tty: bool,
    pub stdin: Option<Source>,
    pub stdout: Option<Sink>,
    pub stderr: Option<Sink>,
    pub error: Sink,
    pub resize: Option<Source>,
    /// True once the client is gone.
    pub gone: watch::Receiver<bool>,
    /// Closes the transport once the session is over.
    finish: Finish,
}

enum Finish {
    Ws(Box<ChannelConn>),
    Spdy(spdy::Connection),
}

impl Session {
    /// Writes the outcome on the error channel and closes everything.
    pub async fn finish(self, outcome: Result<(), serde_json::Value>) {
        let msg = match (&outcome, self.version >= 4) {
            (Ok(()), true) => serde_json::to_vec(&crate::status::success()).ok(),
            (Ok(()), false) => None,
            (Err(status), true) => serde_json::to_vec(status).ok(),
            (Err(status), false) => status["message"].as_str().map(|s| s.as_bytes().to_vec()),
        };
        for s in [&self.stdout, &self.stderr].into_iter().flatten() {
            s.close().await;
        }
        if let Some(m) = msg {
            let _ = self.error.write(Bytes::from(m)).await;
        }
        self.error.close().await;
        drop(self.stdout);
        drop(self.stderr);
        drop(self.error);
        match self.finish {
            // Dropping the last sender sends the close frame.
            Finish::Ws(c) => drop(c),
            Finish::Spdy(c) => c.close().await,
        }
    }
}

/// A session over a WebSocket channel connection.
pub fn from_websocket(ws: crate::ws::Ws, protocol: channel::Protocol, o: &Options) -> Session {
    let mut readable = vec![channel::STDIN];
    if o.tty {
        readable.push(channel::RESIZE);
    }
    let mut conn = ChannelConn::start(ws, protocol, &readable);
    let stdin = if o.stdin {
        conn.reader(channel::STDIN).map(Source::Ws)
    } else {
        None
    };
    let resize = conn.reader(channel::RESIZE).map(Source::Ws);
    let sink = |ch| Sink::Ws(conn.sender(ch));
    Session {
        version: protocol.version,
        tty: o.tty,
        stdin,
        stdout: o.stdout.then(|| sink(channel::STDOUT)),
        stderr: o.stderr.then(|| sink(channel::STDERR)),
        error: sink(channel::ERROR),
        resize,
        gone: conn.gone.clone(),
        finish: Finish::Ws(Box::new(conn)),
    }
}

/// The version number of a channel protocol name.
pub fn version_of(protocol: &str) -> u8 {
    channel::Protocol::parse(protocol)
        .map(|p| p.version)
        .unwrap_or(1)
}

/// Collects the streams the client opens on a SPDY connection (it opens
/// the error stream first, then one per requested channel) and builds a
/// session; fails if they do not all arrive within `timeout`.
pub async fn from_spdy(
    mut conn: spdy::Connection,
    version: u8,
    o: &Options,
    timeout: Duration,
) -> Result<Session, String> {
    let resize_wanted = o.tty && version >= 3;
    let expected =
        1 + o.stdin as usize + o.stdout as usize + o.stderr as usize + resize_wanted as usize;
    let (mut stdin, mut stdout, mut stderr, mut error, mut resize) = (None, None, None, None, None);
    let collect = async {
        let mut got = 0;
        while got < expected {
            let Some(s) = conn.accept().await else {
                return Err("connection closed before all streams arrived".to_string());
            };
            let kind = s.header("streamtype").unwrap_or("").to_string();
            match kind.as_str() {
                "error" => error = Some(s.writer),
                "stdin" => stdin = Some(Source::Spdy(s.reader)),
                "stdout" => stdout = Some(Sink::Spdy(s.writer)),
                "stderr" => stderr = Some(Sink::Spdy(s.writer)),
                "resize" => resize = Some(Source::Spdy(s.reader)),
                other => return Err(format!("unexpected stream type: {other:?}")),
            }
            got += 1;
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("timed out waiting for client to create streams".into()),
    }
    let error = error.ok_or("no error stream")?;
    let (gone_tx, gone) = watch::channel(false);
    let closed = conn.closed_signal();
    tokio::spawn(async move {
        closed.await;
        let _ = gone_tx.send(true);
    });
    Ok(Session {
        version,
        tty: o.tty,
        stdin: stdin.filter(|_| o.stdin),
        stdout,
        stderr,
        error: Sink::Spdy(error),
        resize,
        gone,
        finish: Finish::Spdy(conn),
    })
}

async fn pump_out<R: tokio::io::AsyncRead + Unpin>(mut r: R, sink: Option<Sink>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(s) = &sink {
                    // A client that stopped reading must not stall the
                    // process: keep draining.
                    let _ = s.write(Bytes::copy_from_slice(&buf[..n])).await;
                }
            }
        }
    }
}

async fn pump_in<W: tokio::io::AsyncWrite + Unpin>(mut w: W, src: Option<Source>) {
    if let Some(mut src) = src {
        while let Some(data) = src.recv().await {
            if w.write_all(&data).await.is_err() {
                break;
            }
            let _ = w.flush().await;
        }
    }
    // End of input (or none requested): the process sees EOF.
    let _ = w.shutdown().await;
}

/// Runs `argv` in container `id` and streams it over `session`.
pub async fn run_exec(
    runtime: &dyn skiff_runtime::RuntimeService,
    id: &str,
    argv: Vec<String>,
    mut session: Session,
) {
    let mut exec = match runtime.exec(id, argv.clone(), session.tty).await {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("failed to exec in container: {e}");
            session.finish(Err(crate::status::internal(&msg))).await;
            return;
        }
    };
    let Some(io) = exec.io.take() else {
        session
            .finish(Err(crate::status::internal("exec has no stdio")))
            .await;
        return;
    };
    let stdin_src = session.stdin.take();
    let (stdout, stderr) = (session.stdout.clone(), session.stderr.clone());
    let outputs = async move {
        match io {
            skiff_runtime::ExecIo::Pipes {
                stdin,
                stdout: out,
                stderr: err,
            } => {
                tokio::spawn(pump_in(stdin, stdin_src));
                tokio::join!(pump_out(out, stdout), pump_out(err, stderr));
            }
            skiff_runtime::ExecIo::Pty { stdin, output } => {
                tokio::spawn(pump_in(stdin, stdin_src));
                pump_out(output, stdout.or(stderr)).await;
            }
        }
    };
    let mut resize = session.resize.take();
    let mut gone = session.gone.clone();
    let mut decoder = ResizeDecoder::default();
    tokio::pin!(outputs);
    loop {
        tokio::select! {
            _ = &mut outputs => break,
            data = async { match &mut resize { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                match data {
                    Some(d) => for s in decoder.push(&d) {
                        let _ = exec.resize(s.height, s.width);
                    },
                    None => resize = None,
                }
            }
            _ = gone.wait_for(|g| *g) => {
                // The client left: dropping the exec kills the process.
                return;
            }
        }
    }
    let outcome = match exec.wait().await {
        Ok(0) => Ok(()),
        Ok(code) => Err(crate::status::exit_code(&argv, code)),
        Err(e) => Err(crate::status::internal(&e.to_string())),
    };
    session.finish(outcome).await;
}

/// Attaches `session` to container `id`'s stdio until the container's
/// output ends or the client leaves.
pub async fn run_attach(
    runtime: &dyn skiff_runtime::RuntimeService,
    id: &str,
    mut session: Session,
) {
    let attach = match runtime.attach(id).await {
        Ok(a) => a,
        Err(e) => {
            let msg = format!("failed to attach to container: {e}");
            session.finish(Err(crate::status::internal(&msg))).await;
            return;
        }
    };
    let (mut rd, mut wr) = attach.stream.into_split();
    let stdin_src = session.stdin.take();
    let input = tokio::spawn(async move {
        if let Some(mut src) = stdin_src {
            while let Some(data) = src.recv().await {
                if wr.write_all(&data).await.is_err() {
                    break;
                }
            }
            // Closes the container's stdin when it has `stdinOnce`.
            let _ = wr.shutdown().await;
        } else {
            // Keep our write half open: shutting it would close stdin.
            std::future::pending::<()>().await;
        }
    });
    let (stdout, stderr) = (session.stdout.clone(), session.stderr.clone());
    let output = async move {
        let mut head = [0u8; 5];
        loop {
            if rd.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut data = vec![0u8; len];
            if rd.read_exact(&mut data).await.is_err() {
                return;
            }
            let sink = if head[0] == 2 {
                stderr.as_ref().or(stdout.as_ref())
            } else {
                stdout.as_ref()
            };
            if let Some(s) = sink {
                let _ = s.write(Bytes::from(data)).await;
            }
        }
    };
    let mut gone = session.gone.clone();
    let mut resize = session.resize.take();
    tokio::pin!(output);
    loop {
        tokio::select! {
            _ = &mut output => break,
            // The runtime's attach has no window-size channel: drain.
            d = async { match &mut resize { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                if d.is_none() { resize = None; }
            }
            _ = gone.wait_for(|g| *g) => break,
        }
    }
    input.abort();
    session.finish(Ok(())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_query() {
        let o = Options::from_query(Some(
            "command=sh&command=-c&command=exit+3&stdin=true&stdout=true&stderr=true&tty=false",
        ));
        assert_eq!(o.command, ["sh", "-c", "exit 3"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        let t = Options::from_query(Some("command=sh&stdin=1&stdout=true&stderr=true&tty=true"));
        assert!(t.tty && !t.stderr);
        assert!(Options::from_query(Some("command=ls")).validate().is_err());
    }

    #[test]
    fn resize_messages_across_chunks() {
        let mut d = ResizeDecoder::default();
        assert_eq!(d.push(br#"{"Width":80,"He"#), vec![]);
        assert_eq!(
            d.push(b"ight\":24}\n{\"Width\":100,\"Height\":30}"),
            vec![
                TermSize {
                    width: 80,
                    height: 24
                },
                TermSize {
                    width: 100,
                    height: 30
                }
            ]
        );
        assert_eq!(d.push(b"garbage"), vec![]);
    }
}
