//! A SPDY/3.1 server connection: the client opens streams (kubectl opens
//! one per stdio channel, or an error/data pair per forwarded connection),
//! the server answers each with SYN_REPLY and exchanges DATA on it.
//!
//! One reader task parses frames and routes them; one writer task owns the
//! socket's write half and the header compressor (header blocks must be
//! compressed in wire order). Handlers hold [`Stream`]s.
//!
//! Flow control: every chunk a handler consumes is credited back to the
//! peer with WINDOW_UPDATE (stream and, as 3.1 adds, connection). On the
//! sending side the peer's windows are honoured once the peer has shown it
//! does flow control by sending a WINDOW_UPDATE; Go's spdystream (kubectl,
//! client-go) never does, never sends one, and buffers whatever arrives,
//! so enforcing a 64 KiB window against it would stall `kubectl cp` forever.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};

use super::frame::{self, FLAG_FIN, Frame, rst};
use super::headers::{Compressor, Decompressor, Headers};

/// The window a stream starts with unless SETTINGS says otherwise.
pub const DEFAULT_WINDOW: i64 = 64 * 1024;
/// Largest DATA frame we send.
const MAX_DATA: usize = 32 * 1024;

enum Out {
    Frame(Frame),
    Reply { stream_id: u32 },
    GoAway,
}

struct StreamState {
    data_tx: Option<mpsc::UnboundedSender<Bytes>>,
    send_window: i64,
    local_closed: bool,
    remote_closed: bool,
    reset: bool,
}

struct Shared {
    out: mpsc::Sender<Out>,
    streams: Mutex<HashMap<u32, StreamState>>,
    initial_window: Mutex<i64>,
    conn_window: Mutex<i64>,
    /// The peer has sent a WINDOW_UPDATE: it does flow control.
    peer_flow_control: AtomicBool,
    window_changed: Notify,
    last_stream: Mutex<u32>,
}

impl Shared {
    fn forget_if_done(&self, id: u32) {
        let mut s = self.streams.lock();
        if let Some(st) = s.get(&id)
            && ((st.local_closed && st.remote_closed) || st.reset)
        {
            s.remove(&id);
        }
    }
}

/// One stream the client opened.
pub struct Stream {
    pub id: u32,
    /// Its SYN_STREAM headers (names lower-case).
    pub headers: Headers,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::headers::get(&self.headers, name)
    }
}

/// Data the client sends on one stream; `None` after its FIN or RST.
pub struct StreamReader {
    id: u32,
    rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
}

impl StreamReader {
    pub async fn recv(&mut self) -> Option<Bytes> {
        let data = self.rx.recv().await?;
        // Consumed: give the peer its window back.
        let delta = data.len() as u32;
        if delta > 0 {
            for stream_id in [self.id, 0] {
                let _ = self
                    .shared
                    .out
                    .send(Out::Frame(Frame::WindowUpdate { stream_id, delta }))
                    .await;
            }
        }
        Some(data)
    }
}

/// Sends on one stream. Cloneable; the first `close` sends FIN.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
}

fn closed_err() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "SPDY stream closed")
}

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Takes up to `want` bytes of send window, waiting while it is empty
    /// (only when the peer does flow control).
    async fn reserve(&self, want: usize) -> io::Result<usize> {
        loop {
            let notified = self.shared.window_changed.notified();
            {
                let mut streams = self.shared.streams.lock();
                let st = streams.get_mut(&self.id).ok_or_else(closed_err)?;
                if st.local_closed || st.reset {
                    return Err(closed_err());
                }
                if !self.shared.peer_flow_control.load(Ordering::Acquire) {
                    return Ok(want);
                }
                let mut conn = self.shared.conn_window.lock();
                let avail = st.send_window.min(*conn);
                if avail > 0 {
                    let n = want.min(avail as usize);
                    st.send_window -= n as i64;
                    *conn -= n as i64;
                    return Ok(n);
                }
            }
            notified.await;
        }
    }

    /// Sends `data` as one or more DATA frames.
    pub async fn write(&self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.reserve(data.len().min(MAX_DATA)).await?;
            let chunk = data.split_to(n);
            self.shared
                .out
                .send(Out::Frame(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: chunk,
                }))
                .await
                .map_err(|_| closed_err())?;
        }
        Ok(())
    }

    /// Half-closes the stream (FIN); later writes fail.
    pub async fn close(&self) {
        {
            let mut streams = self.shared.streams.lock();
            match streams.get_mut(&self.id) {
                Some(st) if !st.local_closed && !st.reset => st.local_closed = true,
                _ => return,
            }
        }
        let _ = self
            .shared
            .out
            .send(Out::Frame(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            }))
            .await;
        self.shared.forget_if_done(self.id);
    }

    /// Aborts the stream with RST_STREAM.
    pub async fn reset(&self, status: u32) {
        {
            let mut streams = self.shared.streams.lock();
            match streams.get_mut(&self.id) {
                Some(st) => {
                    st.reset = true;
                    st.data_tx = None;
                }
                None => return,
            }
        }
        let _ = self
            .shared
            .out
            .send(Out::Frame(Frame::RstStream {
                stream_id: self.id,
                status,
            }))
            .await;
        self.shared.forget_if_done(self.id);
    }
}

/// The server end of a SPDY/3.1 connection.
pub struct Connection {
    incoming: mpsc::UnboundedReceiver<Stream>,
    shared: Arc<Shared>,
    closed: watch::Receiver<bool>,
}

impl Connection {
    /// Starts the reader and writer tasks on `io`.
    pub fn start<T>(io: T) -> Connection
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(256);
        let shared = Arc::new(Shared {
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            initial_window: Mutex::new(DEFAULT_WINDOW),
            conn_window: Mutex::new(DEFAULT_WINDOW),
            peer_flow_control: AtomicBool::new(false),
            window_changed: Notify::new(),
            last_stream: Mutex::new(0),
        });
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(false);
        tokio::spawn(write_loop(wr, out_rx, shared.clone()));
        tokio::spawn(read_loop(rd, in_tx, shared.clone(), closed_tx));
        Connection {
            incoming,
            shared,
            closed,
        }
    }

    /// The next stream the client opens; `None` once the connection ends.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    /// Sends GOAWAY and closes the socket once queued frames are written.
    pub async fn close(&self) {
        let _ = self.shared.out.send(Out::GoAway).await;
    }

    /// A future that resolves when the client's side has ended.
    pub fn closed_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut c = self.closed.clone();
        async move {
            let _ = c.wait_for(|v| *v).await;
        }
    }

    /// Resolves when the client's side of the connection has ended.
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|v| *v).await;
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<Out>, shared: Arc<Shared>) {
    let mut wr = std::pin::pin!(wr);
    let mut compressor = Compressor::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut go_away = false;
        // Batch whatever is queued into one write.
        while let Some(item) = next.take() {
            match item {
                Out::Frame(f) => frame::serialize(&f, &mut buf),
                Out::Reply { stream_id } => {
                    let headers = compressor.encode(&[]);
                    frame::serialize(
                        &Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers,
                        },
                        &mut buf,
                    );
                }
                Out::GoAway => {
                    let last_good = *shared.last_stream.lock();
                    frame::serialize(
                        &Frame::GoAway {
                            last_good,
                            status: 0,
                        },
                        &mut buf,
                    );
                    go_away = true;
                    break;
                }
            }
            if buf.len() >= 64 * 1024 {
                break;
            }
            next = rx.try_recv().ok();
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        buf.clear();
        if go_away {
            break;
        }
    }
    let _ = wr.shutdown().await;
    // Wake writers waiting for window: their streams are gone.
    shared.streams.lock().clear();
    shared.window_changed.notify_waiters();
}

async fn read_loop<R: AsyncRead>(
    rd: R,
    incoming: mpsc::UnboundedSender<Stream>,
    shared: Arc<Shared>,
    closed: watch::Sender<bool>,
) {
    let mut rd = std::pin::pin!(rd);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut decompressor = Decompressor::new();
    let mut going_away = false;
    'outer: loop {
        loop {
            let f = match frame::parse(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "SPDY: bad frame, closing");
                    break 'outer;
                }
            };
            if handle(f, &shared, &incoming, &mut decompressor, &mut going_away)
                .await
                .is_err()
            {
                break 'outer;
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // The peer is gone: every stream's reader sees EOF.
    for st in shared.streams.lock().values_mut() {
        st.data_tx = None;
        st.remote_closed = true;
    }
    let _ = closed.send(true);
}

async fn send(shared: &Shared, f: Frame) {
    let _ = shared.out.send(Out::Frame(f)).await;
}

async fn handle(
    f: Frame,
    shared: &Arc<Shared>,
    incoming: &mpsc::UnboundedSender<Stream>,
    decompressor: &mut Decompressor,
    going_away: &mut bool,
) -> Result<(), ()> {
    match f {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => {
            // Always inflate: the zlib stream must see every block.
            let headers = match decompressor.decode(&headers) {
                Ok(h) => h,
                Err(e) => {
                    tracing::debug!(error = %e, "SPDY: bad header block");
                    return Err(());
                }
            };
            let known = shared.streams.lock().contains_key(&stream_id);
            if stream_id % 2 == 0 || stream_id == 0 || known {
                send(
                    shared,
                    Frame::RstStream {
                        stream_id,
                        status: rst::PROTOCOL_ERROR,
                    },
                )
                .await;
                return Ok(());
            }
            if *going_away {
                send(
                    shared,
                    Frame::RstStream {
                        stream_id,
                        status: rst::REFUSED_STREAM,
                    },
                )
                .await;
                return Ok(());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let fin = flags & FLAG_FIN != 0;
            shared.streams.lock().insert(
                stream_id,
                StreamState {
                    data_tx: (!fin).then_some(tx),
                    send_window: *shared.initial_window.lock(),
                    local_closed: false,
                    remote_closed: fin,
                    reset: false,
                },
            );
            {
                let mut last = shared.last_stream.lock();
                *last = (*last).max(stream_id);
            }
            // Clients wait for the reply before they send data.
            let _ = shared.out.send(Out::Reply { stream_id }).await;
            let stream = Stream {
                id: stream_id,
                headers,
                reader: StreamReader {
                    id: stream_id,
                    rx,
                    shared: shared.clone(),
                },
                writer: StreamWriter {
                    id: stream_id,
                    shared: shared.clone(),
                },
            };
            let _ = incoming.send(stream);
        }
        Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
            decompressor.decode(&headers).map_err(|_| ())?;
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let known = {
                let mut streams = shared.streams.lock();
                match streams.get_mut(&stream_id) {
                    Some(st) => {
                        if let Some(tx) = &st.data_tx
                            && !data.is_empty()
                        {
                            let _ = tx.send(data);
                        }
                        if flags & FLAG_FIN != 0 {
                            st.data_tx = None;
                            st.remote_closed = true;
                        }
                        true
                    }
                    None => false,
                }
            };
            if !known {
                send(
                    shared,
                    Frame::RstStream {
                        stream_id,
                        status: rst::INVALID_STREAM,
                    },
                )
                .await;
            } else if flags & FLAG_FIN != 0 {
                shared.forget_if_done(stream_id);
            }
        }
        Frame::RstStream { stream_id, .. } => {
            if let Some(st) = shared.streams.lock().get_mut(&stream_id) {
                st.reset = true;
                st.data_tx = None;
                st.remote_closed = true;
            }
            shared.forget_if_done(stream_id);
            shared.window_changed.notify_waiters();
        }
        Frame::Settings { entries, .. } => {
            for (_, id, value) in entries {
                if id == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                    let value = value as i64;
                    let mut initial = shared.initial_window.lock();
                    let delta = value - *initial;
                    *initial = value;
                    for st in shared.streams.lock().values_mut() {
                        st.send_window += delta;
                    }
                }
            }
            shared.window_changed.notify_waiters();
        }
        Frame::Ping { id } => {
            // Client-initiated pings have odd ids; echo them.
            if id % 2 == 1 {
                send(shared, Frame::Ping { id }).await;
            }
        }
        Frame::GoAway { .. } => *going_away = true,
        Frame::WindowUpdate { stream_id, delta } => {
            shared.peer_flow_control.store(true, Ordering::Release);
            if stream_id == 0 {
                *shared.conn_window.lock() += delta as i64;
            } else if let Some(st) = shared.streams.lock().get_mut(&stream_id) {
                st.send_window += delta as i64;
            }
            shared.window_changed.notify_waiters();
        }
        Frame::Unknown { kind } => tracing::debug!(kind, "SPDY: ignoring frame"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::headers::get;

    /// A minimal client over the other end of a duplex pipe.
    struct Client {
        io: tokio::io::DuplexStream,
        c: Compressor,
        d: Decompressor,
        buf: BytesMut,
    }

    impl Client {
        async fn send(&mut self, f: Frame) {
            let mut b = BytesMut::new();
            frame::serialize(&f, &mut b);
            self.io.write_all(&b).await.unwrap();
        }
        async fn open(&mut self, id: u32, headers: &[(&str, &str)], fin: bool) {
            let headers = self.c.encode(headers);
            self.send(Frame::SynStream {
                stream_id: id,
                associated: 0,
                priority: 0,
                flags: if fin { FLAG_FIN } else { 0 },
                headers,
            })
            .await;
        }
        async fn next(&mut self) -> Frame {
            loop {
                if let Some(f) = frame::parse(&mut self.buf).unwrap() {
                    if let Frame::SynReply { headers, .. } = &f {
                        self.d.decode(headers).unwrap();
                    }
                    return f;
                }
                assert!(self.io.read_buf(&mut self.buf).await.unwrap() > 0, "eof");
            }
        }
        /// The next frame that is not a WINDOW_UPDATE.
        async fn next_non_window(&mut self) -> Frame {
            loop {
                match self.next().await {
                    Frame::WindowUpdate { .. } => continue,
                    f => return f,
                }
            }
        }
    }

    fn pair() -> (Connection, Client) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (
            Connection::start(a),
            Client {
                io: b,
                c: Compressor::new(),
                d: Decompressor::new(),
                buf: BytesMut::new(),
            },
        )
    }

    #[tokio::test]
    async fn streams_reply_echo_and_close() {
        let (mut conn, mut client) = pair();
        client
            .open(1, &[("streamType", "data"), ("port", "80")], false)
            .await;
        let mut s = conn.accept().await.unwrap();
        assert_eq!(get(&s.headers, "streamtype"), Some("data"));
        assert!(matches!(
            client.next().await,
            Frame::SynReply { stream_id: 1, .. }
        ));
        client
            .send(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"ping"),
            })
            .await;
        assert_eq!(s.reader.recv().await.as_deref(), Some(&b"ping"[..]));
        assert_eq!(s.reader.recv().await, None);
        // Consumed data is credited back.
        assert_eq!(
            client.next().await,
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 4
            }
        );
        s.writer.write(Bytes::from_static(b"pong")).await.unwrap();
        s.writer.close().await;
        assert!(s.writer.write(Bytes::from_static(b"late")).await.is_err());
        assert_eq!(
            client.next_non_window().await,
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"pong")
            }
        );
        assert_eq!(
            client.next_non_window().await,
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new()
            }
        );
        client.send(Frame::Ping { id: 3 }).await;
        assert_eq!(client.next_non_window().await, Frame::Ping { id: 3 });
        conn.close().await;
        assert!(matches!(
            client.next_non_window().await,
            Frame::GoAway { last_good: 1, .. }
        ));
    }

    #[tokio::test]
    async fn even_stream_ids_are_refused() {
        let (_conn, mut client) = pair();
        client.open(2, &[], false).await;
        assert!(matches!(
            client.next().await,
            Frame::RstStream {
                stream_id: 2,
                status: rst::PROTOCOL_ERROR
            }
        ));
    }

    #[tokio::test]
    async fn honours_the_window_of_a_peer_that_does_flow_control() {
        let (mut conn, mut client) = pair();
        client
            .send(Frame::Settings {
                flags: 0,
                entries: vec![(0, frame::SETTINGS_INITIAL_WINDOW_SIZE, 10)],
            })
            .await;
        client
            .send(Frame::WindowUpdate {
                stream_id: 0,
                delta: 1 << 20,
            })
            .await;
        client.open(1, &[], false).await;
        let s = conn.accept().await.unwrap();
        let _reply = client.next().await;
        let w = s.writer.clone();
        let send = tokio::spawn(async move { w.write(Bytes::from(vec![7u8; 25])).await });
        let mut got = 0;
        let mut sizes = Vec::new();
        while got < 25 {
            if let Frame::Data { data, .. } = client.next().await {
                got += data.len();
                sizes.push(data.len());
                client
                    .send(Frame::WindowUpdate {
                        stream_id: 1,
                        delta: data.len() as u32,
                    })
                    .await;
            }
        }
        assert_eq!(sizes, vec![10, 10, 5]);
        send.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn peer_eof_ends_readers_and_accept() {
        let (mut conn, mut client) = pair();
        client.open(1, &[], false).await;
        let mut s = conn.accept().await.unwrap();
        drop(client);
        assert_eq!(s.reader.recv().await, None);
        conn.closed().await;
        assert!(conn.accept().await.is_none());
    }
}
