//! The `host` interface: the functions a plugin may call, each behind a capability that is
//! checked on every call (the load-time check is the first line, this is the second). The
//! permissions and the per-call context they are checked against are in [`super::call`].

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sandbox::State;
use super::v0_1::check::upkeep::plugin::{host, types};
use super::Capability;
use crate::net::sock_diag;

/// The most `read-file` returns.
const READ_FILE_MAX: u64 = 1024 * 1024;
/// A log message longer than this is cut.
const LOG_LINE_MAX: usize = 2048;
/// Log output of one call past this is dropped.
const LOG_CALL_MAX_BYTES: usize = 64 * 1024;
const LOG_CALL_MAX_LINES: usize = 200;

impl types::Host for State {}

impl host::Host for State {
    fn listening_sockets(
        &mut self,
        proto: types::Protocol,
    ) -> Result<Vec<types::SocketAddr>, types::HostError> {
        self.call.require(Capability::ListeningSockets)?;
        let proto = match proto {
            types::Protocol::Tcp => Proto::Tcp,
            types::Protocol::Udp => Proto::Udp,
        };
        // sock_diag first (cheap: the listening hash only); /proc when it is not available.
        let diag = match proto {
            Proto::Tcp => sock_diag::Proto::Tcp,
            Proto::Udp => sock_diag::Proto::Udp,
        };
        let sockets = sock_diag::listening(diag)
            .or_else(|_| listening_sockets(Path::new("/proc/self/net"), proto))
            .map_err(|e| types::HostError::Failed(format!("reading /proc/net: {e}")))?;
        Ok(sockets.into_iter().map(socket_to_wit).collect())
    }

    async fn tcp_connect(
        &mut self,
        addr: String,
        port: u16,
        timeout_ms: u32,
    ) -> Result<(), types::HostError> {
        self.call.require(Capability::TcpConnect)?;
        let ip: IpAddr = addr.trim().parse().map_err(|_| {
            types::HostError::Failed(format!(
                "`{addr}` is not an IP address (no name resolution)"
            ))
        })?;
        let granted = self
            .call
            .perms
            .grants
            .tcp_connect
            .iter()
            .any(|g| g.ip() == ip && (g.port() == 0 || g.port() == port));
        if !granted {
            return Err(types::HostError::Denied(format!(
                "{} is not granted",
                SocketAddr::new(ip, port)
            )));
        }
        let left = self.call.deadline.saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(timeout_ms.into()).min(left);
        match tokio::time::timeout(wait, tokio::net::TcpStream::connect((ip, port))).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(types::HostError::Failed(e.to_string())),
            Err(_) => Err(types::HostError::Failed(format!(
                "no answer within {} ms",
                wait.as_millis()
            ))),
        }
    }

    fn read_file(&mut self, path: String) -> Result<String, types::HostError> {
        self.call.require(Capability::ReadFile)?;
        read_granted_file(&self.call.perms.read_roots, Path::new(&path))
    }

    fn log(&mut self, level: types::LogLevel, message: String) -> Result<(), types::HostError> {
        self.call.require(Capability::Log)?;
        let call = &mut self.call;
        if call.log_lines >= LOG_CALL_MAX_LINES || call.log_bytes >= LOG_CALL_MAX_BYTES {
            call.log_dropped += 1;
            return Ok(());
        }
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        call.log_lines += 1;
        call.log_bytes += message.len();
        let plugin = call.perms.plugin.as_str();
        match level {
            types::LogLevel::Trace => {
                tracing::trace!(target: "upkeep::plugin", plugin, "{message}")
            }
            types::LogLevel::Debug => {
                tracing::debug!(target: "upkeep::plugin", plugin, "{message}")
            }
            types::LogLevel::Info => tracing::info!(target: "upkeep::plugin", plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(target: "upkeep::plugin", plugin, "{message}"),
            types::LogLevel::Error => {
                tracing::error!(target: "upkeep::plugin", plugin, "{message}")
            }
        }
        Ok(())
    }

    fn now_ms(&mut self) -> Result<u64, types::HostError> {
        self.call.require(Capability::Clock)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Reads `path` if it resolves (symlinks and `..` followed) to a granted file or to a file
/// under a granted directory.
fn read_granted_file(roots: &[PathBuf], path: &Path) -> Result<String, types::HostError> {
    let denied = || types::HostError::Denied(format!("{} is not granted", path.display()));
    if !path.is_absolute() {
        return Err(types::HostError::Failed(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        // Say whether a path exists only where the plugin may look.
        Err(e) if roots.iter().any(|r| path.starts_with(r)) => {
            return Err(types::HostError::Failed(format!("{}: {e}", path.display())))
        }
        Err(_) => return Err(denied()),
    };
    if !roots.iter().any(|r| real.starts_with(r)) {
        return Err(denied());
    }
    let failed = |e: std::io::Error| types::HostError::Failed(format!("{}: {e}", path.display()));
    // Only regular files: opening a FIFO or a device could block or never end.
    if !std::fs::metadata(&real).map_err(failed)?.is_file() {
        return Err(types::HostError::Failed(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    File::open(&real)
        .and_then(|f| f.take(READ_FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    if bytes.len() as u64 > READ_FILE_MAX {
        return Err(types::HostError::Failed(format!(
            "{} is larger than 1 MiB",
            path.display()
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

/// Listening sockets from `<net>/{tcp,tcp6}` (state LISTEN) or `<net>/{udp,udp6}` (state
/// CLOSE: bound, not connected). A missing file (IPv6 disabled) counts as empty.
pub(crate) fn listening_sockets(net: &Path, proto: Proto) -> std::io::Result<Vec<SocketAddr>> {
    let (files, state) = match proto {
        Proto::Tcp => (["tcp", "tcp6"], 0x0A),
        Proto::Udp => (["udp", "udp6"], 0x07),
    };
    let mut out = Vec::new();
    for file in files {
        match std::fs::read_to_string(net.join(file)) {
            Ok(text) => out.extend(parse_proc_net(&text, state)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The local addresses of the lines of a /proc/net/{tcp,udp}[6] table in `state`.
/// Lines look like `0: 0100007F:0050 00000000:0000 0A ...`: the address is the kernel's
/// in-memory bytes printed as native-endian 32-bit words, the port is a plain number.
pub(crate) fn parse_proc_net(text: &str, state: u8) -> Vec<SocketAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let st = u8::from_str_radix(fields.nth(1)?, 16).ok()?;
            if st != state {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = parse_hex_addr(addr)?;
            Some(SocketAddr::new(ip, port))
        })
        .collect()
}

fn parse_hex_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

fn socket_to_wit(s: SocketAddr) -> types::SocketAddr {
    let address = match s.ip() {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            types::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(a) => {
            let [a, b, c, d, e, f, g, h] = a.segments();
            types::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    };
    types::SocketAddr {
        address,
        port: s.port(),
    }
}

impl From<Capability> for types::Capability {
    fn from(c: Capability) -> Self {
        match c {
            Capability::ListeningSockets => types::Capability::ListeningSockets,
            Capability::TcpConnect => types::Capability::TcpConnect,
            Capability::ReadFile => types::Capability::ReadFile,
            Capability::Log => types::Capability::Log,
            Capability::Clock => types::Capability::Clock,
        }
    }
}

impl From<types::Capability> for Capability {
    fn from(c: types::Capability) -> Self {
        match c {
            types::Capability::ListeningSockets => Capability::ListeningSockets,
            types::Capability::TcpConnect => Capability::TcpConnect,
            types::Capability::ReadFile => Capability::ReadFile,
            types::Capability::Log => Capability::Log,
            types::Capability::Clock => Capability::Clock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_listening_tcp() {
        let v4 = parse_proc_net(TCP, 0x0A);
        assert_eq!(
            v4,
            vec![
                "127.0.0.1:80".parse().unwrap(),
                "0.0.0.0:8080".parse().unwrap()
            ]
        );
        let v6 = parse_proc_net(TCP6, 0x0A);
        assert_eq!(
            v6,
            vec!["[::]:22".parse().unwrap(), "[::1]:631".parse().unwrap()]
        );
    }

    #[test]
    fn skips_garbage() {
        assert!(parse_proc_net("header\n 0: nonsense\n 1: 0100007F:zz 0:0 0A\n", 0x0A).is_empty());
    }

    #[test]
    fn reads_this_hosts_table() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listening_sockets(Path::new("/proc/self/net"), Proto::Tcp).unwrap();
        assert!(found.contains(&addr), "{addr} not in {found:?}");
    }

    #[test]
    fn read_file_follows_grants() {
        let dir = std::env::temp_dir().join(format!("upkeep-wasm-read-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ok")).unwrap();
        std::fs::write(dir.join("ok/a"), "hello").unwrap();
        std::fs::write(dir.join("secret"), "no").unwrap();
        let roots = vec![std::fs::canonicalize(dir.join("ok")).unwrap()];
        assert_eq!(
            read_granted_file(&roots, &dir.join("ok/a")).unwrap(),
            "hello"
        );
        let escape = dir.join("ok/../secret");
        assert!(matches!(
            read_granted_file(&roots, &escape),
            Err(types::HostError::Denied(_))
        ));
        assert!(matches!(
            read_granted_file(&roots, Path::new("/etc/passwd")),
            Err(types::HostError::Denied(_))
        ));
        assert!(matches!(
            read_granted_file(&roots, Path::new("ok/a")),
            Err(types::HostError::Failed(_))
        ));
        assert!(matches!(
            read_granted_file(&roots, &dir.join("ok")),
            Err(types::HostError::Failed(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
