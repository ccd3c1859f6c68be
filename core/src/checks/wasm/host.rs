//! The `host` interface: the functions a plugin may call, each behind a capability that is
//! checked on every call (the load-time check is the first line, this is the second). The
//! permissions and the per-call context they are checked against are in [`super::call`].

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::call::ReadRoot;
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
    async fn listening_sockets(
        &mut self,
        proto: types::Protocol,
    ) -> Result<Vec<types::SocketAddr>, types::HostError> {
        self.call.require(Capability::ListeningSockets)?;
        let proto = match proto {
            types::Protocol::Tcp => Proto::Tcp,
            types::Protocol::Udp => Proto::Udp,
        };
        let sockets = until_deadline(self.call.deadline, "listening-sockets", move || {
            // sock_diag first (cheap: the listening hash only); /proc when it is not available.
            let diag = match proto {
                Proto::Tcp => sock_diag::Proto::Tcp,
                Proto::Udp => sock_diag::Proto::Udp,
            };
            sock_diag::listening(diag)
                .or_else(|_| listening_sockets(Path::new("/proc/self/net"), proto))
                .map_err(|e| types::HostError::Failed(format!("reading /proc/net: {e}")))
        })
        .await?;
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

    async fn read_file(&mut self, path: String) -> Result<String, types::HostError> {
        self.call.require(Capability::ReadFile)?;
        let perms = self.call.perms.clone();
        until_deadline(self.call.deadline, "read-file", move || {
            read_granted_file(&perms.read_roots, Path::new(&path))
        })
        .await
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

/// Runs a host call's blocking work (the file system, netlink) on a blocking thread and gives
/// up on it at the call's deadline, as the engine does with guest code: the plugin host's one
/// worker thread, which runs every plugin, never waits for a stuck read (a hung file system).
async fn until_deadline<T: Send + 'static>(
    deadline: Instant,
    what: &'static str,
    work: impl FnOnce() -> Result<T, types::HostError> + Send + 'static,
) -> Result<T, types::HostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(types::HostError::Failed(format!(
            "{what}: internal error in the plugin host: {e}"
        ))),
        Err(_) => Err(types::HostError::Failed(format!(
            "{what}: no answer before the call's deadline"
        ))),
    }
}

/// Reads `path` if it is a granted file or lies under a granted directory, as the grant was
/// resolved at load. Nothing is followed at read time: the file is opened with `openat2`
/// relative to the grant (`RESOLVE_BENEATH`: `..` cannot climb out; `RESOLVE_NO_SYMLINKS`: a
/// symbolic link anywhere on the way, swapped in after load or not, is refused) and
/// non-blocking, and the open descriptor must be a regular file (a FIFO or a device is refused
/// without waiting on it). What was checked is what is read: no name is looked up twice.
pub(super) fn read_granted_file(
    roots: &[ReadRoot],
    path: &Path,
) -> Result<String, types::HostError> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(types::HostError::Failed(format!(
            "{shown} is not an absolute path"
        )));
    }
    let denied = || types::HostError::Denied(format!("{shown} is not granted"));
    let (root, rel) = roots
        .iter()
        .find_map(|r| {
            let rel = path
                .strip_prefix(&r.asked)
                .or_else(|_| path.strip_prefix(&r.real))
                .ok()?;
            Some((r, rel))
        })
        .ok_or_else(denied)?;
    let failed = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ELOOP) => types::HostError::Denied(format!(
            "{shown}: a symbolic link on the way (links are not followed)"
        )),
        Some(libc::EXDEV) => denied(),
        Some(libc::ENOSYS) => types::HostError::Failed(format!(
            "{shown}: read-file needs Linux 5.6 or later (openat2)"
        )),
        _ => types::HostError::Failed(format!("{shown}: {e}")),
    };
    let file = open_beneath(&root.real, rel).map_err(failed)?;
    let file = File::from(file);
    if !file.metadata().map_err(failed)?.is_file() {
        return Err(types::HostError::Failed(format!(
            "{shown} is not a regular file"
        )));
    }
    let mut bytes = Vec::new();
    file.take(READ_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > READ_FILE_MAX {
        return Err(types::HostError::Failed(format!(
            "{shown} is larger than 1 MiB"
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens `rel` under the directory `root` (or `root` itself, when `rel` is empty) for reading,
/// non-blocking, following no symbolic link on the way to `root` or below it, and not leaving
/// `root` by `..`: openat2, or the same one component at a time on kernels before 5.6.
fn open_beneath(root: &Path, rel: &Path) -> std::io::Result<OwnedFd> {
    let read = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let opened = if rel.as_os_str().is_empty() {
        openat2(None, root, read, libc::RESOLVE_NO_SYMLINKS)
    } else {
        let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        openat2(None, root, dir_flags, libc::RESOLVE_NO_SYMLINKS).and_then(|dir| {
            let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
            openat2(Some(&dir), rel, read, resolve)
        })
    };
    match opened {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => open_beneath_by_steps(root, rel),
        other => other,
    }
}

/// [`open_beneath`] without openat2: from `/`, each component opened with `O_NOFOLLOW` (a link
/// is `ELOOP`); a `..` below `root` is refused (`EXDEV`), even one that would stay inside.
fn open_beneath_by_steps(root: &Path, rel: &Path) -> std::io::Result<OwnedFd> {
    use std::path::Component;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in root.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            _ => return Err(std::io::Error::from_raw_os_error(libc::EXDEV)),
        }
    }
    // O_PATH with O_NOFOLLOW opens a link itself, which fstat then tells apart.
    let dir_flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let into = |dir: Option<&OwnedFd>, part: &Path| -> std::io::Result<OwnedFd> {
        let f = File::from(openat(dir, part, dir_flags)?);
        let ft = f.metadata()?.file_type();
        if ft.is_symlink() {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        if !ft.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(OwnedFd::from(f))
    };
    let read =
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let mut dir = into(None, Path::new("/"))?;
    let Some((last, walk)) = parts.split_last() else {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    };
    for part in walk {
        dir = into(Some(&dir), Path::new(part))?;
    }
    openat(Some(&dir), Path::new(last), read)
}

/// openat(2).
#[allow(unsafe_code)]
fn openat(dir: Option<&OwnedFd>, path: &Path, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let dirfd = dir.map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    // SAFETY: `cpath` is NUL-terminated and alive for the call.
    let fd = unsafe { libc::openat(dirfd, cpath.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned `fd`, open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2(2): opens `path` relative to `dir` (None: the current directory, for an absolute
/// path) with `flags` and the `resolve` restrictions.
#[allow(unsafe_code)]
fn openat2(
    dir: Option<&OwnedFd>,
    path: &Path,
    flags: libc::c_int,
    resolve: u64,
) -> std::io::Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain old data; all-zero is valid (and what unused fields must be).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::try_from(flags).unwrap_or_default();
    how.resolve = resolve;
    let dirfd = dir.map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    // SAFETY: `cpath` is NUL-terminated and `how` a valid open_how, both alive for the call,
    // whose size is passed with it; the kernel writes nothing back into them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            cpath.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd =
        libc::c_int::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd`, open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

    fn root(p: &Path) -> ReadRoot {
        ReadRoot {
            asked: p.to_owned(),
            real: std::fs::canonicalize(p).unwrap(),
        }
    }

    #[test]
    fn read_file_follows_grants() {
        let dir = std::env::temp_dir().join(format!("upkeep-wasm-read-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ok")).unwrap();
        std::fs::write(dir.join("ok/a"), "hello").unwrap();
        std::fs::write(dir.join("secret"), "no").unwrap();
        let roots = vec![root(&dir.join("ok"))];
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
        // A link inside the grant is not followed, wherever it leads.
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("ok/out")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("ok/in")).unwrap();
        for link in ["ok/out", "ok/in"] {
            let err = read_granted_file(&roots, &dir.join(link)).unwrap_err();
            assert!(
                matches!(&err, types::HostError::Denied(m) if m.contains("symbolic link")),
                "{link}: {err:?}"
            );
        }
        // A granted file, by the name the config gave it (a link, resolved once at load).
        let file_roots = vec![root(&dir.join("ok/in"))];
        assert_eq!(
            read_granted_file(&file_roots, &dir.join("ok/in")).unwrap(),
            "hello"
        );
        assert_eq!(
            read_granted_file(&file_roots, &dir.join("ok/a")).unwrap(),
            "hello"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Without openat2 (Linux before 5.6), the step-by-step open gives the same answers.
    #[test]
    fn opening_by_steps_follows_no_link_and_stays_beneath() {
        let dir = std::env::temp_dir().join(format!("upkeep-wasm-steps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ok/sub")).unwrap();
        std::fs::write(dir.join("ok/sub/a"), "hello").unwrap();
        std::fs::write(dir.join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("ok/out")).unwrap();
        std::os::unix::fs::symlink("ok", dir.join("link")).unwrap();
        let root = dir.join("ok");
        let read = |fd: OwnedFd| {
            let mut s = String::new();
            File::from(fd).read_to_string(&mut s).unwrap();
            s
        };
        let errno = |r: std::io::Result<OwnedFd>| r.err().and_then(|e| e.raw_os_error());
        for open in [open_beneath, open_beneath_by_steps] {
            assert_eq!(read(open(&root, Path::new("sub/a")).unwrap()), "hello");
            assert_eq!(
                read(open(&root.join("sub/a"), Path::new("")).unwrap()),
                "hello"
            );
            assert_eq!(errno(open(&root, Path::new("out"))), Some(libc::ELOOP));
            assert_eq!(
                errno(open(&root, Path::new("../secret"))),
                Some(libc::EXDEV)
            );
            assert_eq!(
                errno(open(&dir.join("link"), Path::new("sub/a"))),
                Some(libc::ELOOP)
            );
            assert_eq!(errno(open(&root, Path::new("none"))), Some(libc::ENOENT));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A name in a granted directory swapped, as fast as a thread can, between a regular file
    /// and `swap_in` (made by `make` at `tmp`): `read` runs meanwhile until `stop`.
    fn race(
        tag: &str,
        make: impl Fn(&Path) + Send + 'static,
        read: impl FnOnce(&Path, &[ReadRoot]),
    ) {
        let dir = std::env::temp_dir().join(format!("upkeep-race-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("grant")).unwrap();
        let name = dir.join("grant/status");
        std::fs::write(&name, "public").unwrap();
        let roots = vec![root(&dir.join("grant"))];
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (stop, dir, name) = (stop.clone(), dir.clone(), name.clone());
            std::thread::spawn(move || {
                let (file, other) = (dir.join("grant/.file"), dir.join("grant/.other"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::write(&file, "public").unwrap();
                    std::fs::rename(&file, &name).unwrap();
                    make(&other);
                    std::fs::rename(&other, &name).unwrap();
                }
            })
        };
        read(&dir, &roots);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flipper.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_file_never_reads_through_a_link_swapped_in() {
        let secret =
            std::env::temp_dir().join(format!("upkeep-race-secret-{}", std::process::id()));
        std::fs::write(&secret, "SECRET").unwrap();
        let target = secret.clone();
        race(
            "link",
            move |at| std::os::unix::fs::symlink(&target, at).unwrap(),
            |dir, roots| {
                let (mut public, mut leaked, mut refused) = (0, 0, 0);
                let until = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < until {
                    match read_granted_file(roots, &dir.join("grant/status")) {
                        Ok(text) if text == "SECRET" => leaked += 1,
                        Ok(_) => public += 1,
                        Err(_) => refused += 1,
                    }
                }
                eprintln!("{public} public reads, {refused} refused, {leaked} of the secret");
                assert_eq!(leaked, 0, "read outside the grant through a swapped link");
                assert!(public > 0 && refused > 0, "the race did not run");
            },
        );
        let _ = std::fs::remove_file(&secret);
    }

    #[test]
    fn read_file_never_waits_on_a_fifo_swapped_in() {
        race(
            "fifo",
            |at| {
                let c = CString::new(at.as_os_str().as_bytes()).unwrap();
                // SAFETY: a NUL-terminated path, alive for the call.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
                assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
            },
            |dir, roots| {
                let path = dir.join("grant/status");
                let roots = roots.to_vec();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let (mut public, mut refused) = (0, 0);
                    let until = Instant::now() + Duration::from_millis(1500);
                    while Instant::now() < until {
                        match read_granted_file(&roots, &path) {
                            Ok(_) => public += 1,
                            Err(_) => refused += 1,
                        }
                    }
                    let _ = tx.send((public, refused));
                });
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok((public, refused)) => {
                        eprintln!("{public} public reads, {refused} refused");
                        assert!(public > 0 && refused > 0, "the race did not run");
                    }
                    // The reader is stuck opening a FIFO nobody writes to (and stays so).
                    Err(_) => panic!("read-file blocked on a FIFO swapped in"),
                }
            },
        );
    }
}
