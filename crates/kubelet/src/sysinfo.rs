//! Real measurements of the node: CPU count, memory, disk, pids, kernel and
//! OS, read from `/proc`, `/etc/os-release` and `statvfs`.

use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Measurements {
    pub cpus: usize,
    pub memory_total: u64,
    pub memory_available: u64,
    pub disk_total: u64,
    pub disk_available: u64,
    pub pids_used: u64,
    pub pid_max: u64,
}

pub fn measure(data_dir: &Path) -> Measurements {
    let mut m = Measurements {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        ..Default::default()
    };
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        for line in meminfo.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let kib: u64 = v.parse().unwrap_or(0);
            match k {
                "MemTotal:" => m.memory_total = kib * 1024,
                "MemAvailable:" => m.memory_available = kib * 1024,
                _ => {}
            }
        }
    }
    if let Ok(c) = std::ffi::CString::new(data_dir.as_os_str().as_encoded_bytes()) {
        // SAFETY: zeroed statvfs is a valid out-parameter; `c` is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0 {
            m.disk_total = st.f_blocks as u64 * st.f_frsize as u64;
            m.disk_available = st.f_bavail as u64 * st.f_frsize as u64;
        }
    }
    m.pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    m.pids_used = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count() as u64
        })
        .unwrap_or(0);
    m
}

impl Measurements {
    /// Upstream's default hard eviction threshold: `memory.available<100Mi`.
    pub fn memory_pressure(&self) -> bool {
        self.memory_total > 0 && self.memory_available < 100 << 20
    }

    /// `nodefs.available<10%`.
    pub fn disk_pressure(&self) -> bool {
        self.disk_total > 0 && self.disk_available * 10 < self.disk_total
    }

    /// More than 90% of the pid space in use.
    pub fn pid_pressure(&self) -> bool {
        self.pid_max > 0 && self.pids_used * 10 > self.pid_max * 9
    }
}

/// `uname -r` and the machine name.
pub fn kernel() -> (String, String) {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return ("unknown".into(), "unknown".into());
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.release), s(&u.nodename))
}

/// `PRETTY_NAME` from `/etc/os-release`.
pub fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// Kubernetes' architecture names.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The first global IPv4 address of this network namespace (from
/// `/proc/net/fib_trie` would be awkward; a UDP "connect" picks the
/// address routing would use, and falls back to any non-loopback one).
pub fn default_ip() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    if sock.connect("192.0.2.1:9").is_ok()
        && let Ok(a) = sock.local_addr()
        && !a.ip().is_unspecified()
    {
        return Some(a.ip());
    }
    None
}
