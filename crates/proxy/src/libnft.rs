//! nft in process: libnftables with one long-lived context, for the delta
//! transactions.
//!
//! Why: a `nft -f` process costs far more than its transaction. Besides
//! starting up and reading the table into its cache, its exit closes its
//! netlink socket, and the kernel's release of an nf_tables socket waits
//! for the objects the last commit deleted to be freed (an RCU grace
//! period, 10–15 ms here); a delta always deletes something (a chain
//! flush deletes its rules). A context that lives as long as the proxy
//! keeps its socket open, so a delta costs its parse, the cache read and
//! the commit (measured on a 1,000 Service table: ~4 ms against ~24 ms for
//! `nft -f`, and ~52 ms with per-endpoint chains).
//!
//! The library is loaded with `dlopen` (it comes with the `nft` package;
//! no build-time dependency, and a host without it falls back to running
//! `nft`). The context lives on a thread of its own: its netlink socket
//! belongs to the network namespace that thread is in when it opens it
//! (the proxy's: threads that `setns` elsewhere are throwaway ones), and
//! libnftables is blocking and not meant for concurrent use.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::apply::ApplyError;

/// The shared object `nft` itself links (Debian's libnftables1).
const LIBRARY: &CStr = c"libnftables.so.1";

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle on the context's thread; the thread (and the context) end when
/// the last handle is dropped.
#[derive(Clone)]
pub struct Nft {
    jobs: mpsc::Sender<(CString, Reply)>,
}

impl Nft {
    /// Loads libnftables and opens a context on a new thread. None when
    /// the library is not there or does not work (the caller then runs the
    /// `nft` program).
    pub fn open() -> Option<Nft> {
        let (jobs, queue) = mpsc::channel::<(CString, Reply)>();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::Builder::new()
            .name("proxy-nft".into())
            .spawn(move || {
                let ctx = match Context::new() {
                    Ok(ctx) => {
                        let _ = ready_tx.send(Ok(()));
                        ctx
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for (text, reply) in queue {
                    let _ = reply.send(ctx.run(&text));
                }
            })
            .ok()?;
        match ready.recv() {
            Ok(Ok(())) => Some(Nft { jobs }),
            Ok(Err(e)) => {
                tracing::debug!("proxy: libnftables unavailable, running nft: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Applies `text` as one transaction, as `nft -f` would.
    pub async fn run(&self, text: &str) -> Result<(), ApplyError> {
        let text = CString::new(text)
            .map_err(|_| ApplyError::Rejected("transaction contains a NUL byte".into()))?;
        let (reply, result) = oneshot::channel();
        let gone = || ApplyError::Rejected("the libnftables thread has ended".into());
        self.jobs.send((text, reply)).map_err(|_| gone())?;
        result
            .await
            .map_err(|_| gone())?
            .map_err(ApplyError::Rejected)
    }
}

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxFlag = unsafe extern "C" fn(*mut c_void) -> c_int;
type CtxBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// The library's entry points this module uses (see `libnftables(3)`).
struct Api {
    ctx_new: CtxNew,
    ctx_free: CtxFree,
    buffer_output: CtxFlag,
    buffer_error: CtxFlag,
    output_buffer: CtxBuffer,
    error_buffer: CtxBuffer,
    run_cmd: RunCmd,
}

/// One `struct nft_ctx`, used only by the thread that made it.
struct Context {
    api: Api,
    ctx: *mut c_void,
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a valid C string owned by libc.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated (see above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Context {
    fn new() -> Result<Context, String> {
        // SAFETY: dlopen with a valid C string; the handle is never closed,
        // so the function pointers below stay valid for the process.
        let lib = unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            return Err(dlerror());
        }
        let sym = |name: &CStr| {
            // SAFETY: a valid handle and C string.
            let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
            if p.is_null() { Err(dlerror()) } else { Ok(p) }
        };
        use std::mem::transmute;
        // SAFETY: each symbol is the libnftables function of that name,
        // whose C signature the field's type matches.
        let api = unsafe {
            Api {
                ctx_new: transmute::<*mut c_void, CtxNew>(sym(c"nft_ctx_new")?),
                ctx_free: transmute::<*mut c_void, CtxFree>(sym(c"nft_ctx_free")?),
                buffer_output: transmute::<*mut c_void, CtxFlag>(sym(c"nft_ctx_buffer_output")?),
                buffer_error: transmute::<*mut c_void, CtxFlag>(sym(c"nft_ctx_buffer_error")?),
                output_buffer: transmute::<*mut c_void, CtxBuffer>(sym(
                    c"nft_ctx_get_output_buffer",
                )?),
                error_buffer: transmute::<*mut c_void, CtxBuffer>(sym(
                    c"nft_ctx_get_error_buffer",
                )?),
                run_cmd: transmute::<*mut c_void, RunCmd>(sym(c"nft_run_cmd_from_buffer")?),
            }
        };
        // SAFETY: NFT_CTX_DEFAULT (0) opens the netlink socket too.
        let ctx = unsafe { (api.ctx_new)(0) };
        if ctx.is_null() {
            return Err("nft_ctx_new failed".into());
        }
        let c = Context { api, ctx };
        // SAFETY: a live context; buffering keeps nft's messages off our
        // stdout/stderr and lets a failure carry its text.
        let buffered =
            unsafe { (c.api.buffer_output)(c.ctx) == 0 && (c.api.buffer_error)(c.ctx) == 0 };
        if !buffered {
            return Err("cannot buffer libnftables output".into());
        }
        Ok(c)
    }

    fn run(&self, text: &CStr) -> Result<(), String> {
        // SAFETY: a live context and a NUL-terminated buffer; the returned
        // buffers are owned by the context and read before the next call.
        unsafe {
            let rc = (self.api.run_cmd)(self.ctx, text.as_ptr());
            // Reading a buffer also rewinds it for the next command.
            let _ = (self.api.output_buffer)(self.ctx);
            let err = (self.api.error_buffer)(self.ctx);
            if rc == 0 {
                return Ok(());
            }
            let mut msg = if err.is_null() {
                String::new()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            };
            msg.truncate(4000);
            Err(msg)
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was made by ctx_new and is freed once.
        unsafe { (self.api.ctx_free)(self.ctx) }
    }
}
