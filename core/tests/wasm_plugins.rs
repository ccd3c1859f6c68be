//! The WASM plugin host against real components: the canonical port-listener check, the C
//! plugin, and the hostile plugin that loops, allocates, recurses, traps, floods and snoops.
//!
//! The components are built by `scripts/build-plugins.sh` into `target/plugins/`; these tests
//! fail (rather than skip) when they are missing.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use upkeep::checks::wasm::{
    inspect, Capability, CheckOutcome, CodeCache, Fault, Grants, Limits, Plugin, PluginError,
    PluginHost, StateChange,
};

fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UPKEEP_PLUGIN_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("plugins")
}

fn plugin_path(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh first (it builds the WASM plugins these \
         tests load; set UPKEEP_PLUGIN_DIR to look elsewhere)",
        path.display()
    );
    path
}

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| PluginHost::new().expect("plugin host"))
}

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(name: &str, grants: Grants, limits: Limits) -> Plugin {
    let path = plugin_path(name);
    let started = Instant::now();
    let plugin = Plugin::load(host(), &path, grants, limits)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    eprintln!("loaded {name} in {:?}", started.elapsed());
    plugin
}

fn port_listener() -> Plugin {
    let grants = Grants {
        listening_sockets: true,
        log: true,
        ..Grants::default()
    };
    load("port-listener", grants, Limits::default())
}

/// The hostile plugin, with a short timeout, shared by the tests that only read it.
fn hostile() -> &'static Plugin {
    static HOSTILE: OnceLock<Plugin> = OnceLock::new();
    HOSTILE.get_or_init(|| {
        let grants = Grants {
            log: true,
            ..Grants::default()
        };
        load(
            "hostile",
            grants,
            Limits {
                timeout: Duration::from_millis(200),
                ..Limits::default()
            },
        )
    })
}

fn behave(plugin: &Plugin, behaviour: &str) -> CheckOutcome {
    let outcome = plugin.check(&cfg(&[("behaviour", behaviour)]));
    eprintln!("{behaviour}: {outcome:?}");
    outcome
}

/// After any misbehaviour, the same plugin still answers.
fn still_works(plugin: &Plugin) {
    let ok = behave(plugin, "ok");
    assert!(ok.healthy, "{ok:?}");
    assert_eq!(ok.message, "fine");
}

#[test]
fn port_listener_healthy_while_something_listens() {
    let plugin = port_listener();
    let meta = plugin.metadata();
    assert_eq!(meta.name, "port-listener");
    assert_eq!(
        meta.capabilities,
        vec![Capability::ListeningSockets, Capability::Log]
    );
    assert!(meta.check && !meta.notify);

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();

    let up = plugin.check(&cfg(&[("port", &port)]));
    assert!(up.healthy, "{up:?}");
    assert!(up.message.contains(&format!("127.0.0.1:{port}")), "{up:?}");
    let up = plugin.check(&cfg(&[
        ("port", &port),
        ("address", "127.0.0.1"),
        ("protocol", "tcp"),
    ]));
    assert!(up.healthy, "{up:?}");
    let up = plugin.check(&cfg(&[("port", &port), ("address", "0.0.0.0")]));
    assert!(up.healthy, "0.0.0.0 means any address: {up:?}");

    let elsewhere = plugin.check(&cfg(&[("port", &port), ("address", "127.0.0.2")]));
    assert!(!elsewhere.healthy, "{elsewhere:?}");
    assert_eq!(elsewhere.fault, None);
    let udp = plugin.check(&cfg(&[("port", &port), ("protocol", "udp")]));
    assert!(!udp.healthy, "{udp:?}");

    drop(listener);
    let down = plugin.check(&cfg(&[("port", &port)]));
    assert!(!down.healthy, "{down:?}");
    assert_eq!(down.fault, None, "the plugin answered: {down:?}");
    assert!(down.message.contains("nothing listens"), "{down:?}");
}

#[test]
fn port_listener_sees_udp() {
    let plugin = port_listener();
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    let up = plugin.check(&cfg(&[("port", &port), ("protocol", "udp")]));
    assert!(up.healthy, "{up:?}");
    drop(socket);
    let down = plugin.check(&cfg(&[("port", &port), ("protocol", "udp")]));
    assert!(!down.healthy, "{down:?}");
}

#[test]
fn port_listener_reports_bad_config() {
    let plugin = port_listener();
    let out = plugin.check(&[]);
    assert!(!out.healthy);
    assert_eq!(out.fault, None);
    assert!(out.message.contains("`port` is required"), "{out:?}");
    let out = plugin.check(&cfg(&[("port", "eighty")]));
    assert!(out.message.contains("invalid value `eighty`"), "{out:?}");
    let out = plugin.check(&cfg(&[("port", "80"), ("protocol", "sctp")]));
    assert!(out.message.contains("expected tcp or udp"), "{out:?}");
}

#[test]
fn ungranted_capability_is_refused_at_load() {
    let err = Plugin::load(
        host(),
        &plugin_path("port-listener"),
        Grants::default(),
        Limits::default(),
    )
    .expect_err("port-listener wants listening-sockets");
    match &err {
        PluginError::CapabilityNotGranted { plugin, capability } => {
            assert_eq!(plugin, "port-listener");
            assert_eq!(*capability, Capability::ListeningSockets);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("listening-sockets"), "{err}");

    let grants = Grants {
        listening_sockets: true,
        ..Grants::default()
    };
    let err = Plugin::load(
        host(),
        &plugin_path("port-listener"),
        grants,
        Limits::default(),
    )
    .expect_err("port-listener wants log too");
    assert!(err.to_string().contains("`log`"), "{err}");
}

#[test]
fn c_plugin_reads_only_granted_files() {
    let dir = std::env::temp_dir().join(format!("upkeep-wasm-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("status");
    std::fs::write(&file, "service: ready\n").unwrap();
    let path = file.to_str().unwrap();

    let grants = Grants {
        read_file: vec![dir.clone()],
        log: true,
        ..Grants::default()
    };
    let plugin = load("file-contains-c", grants, Limits::default());
    let meta = plugin.metadata();
    assert_eq!(meta.name, "file-contains");
    assert_eq!(
        meta.capabilities,
        vec![Capability::ReadFile, Capability::Log]
    );

    let found = plugin.check(&cfg(&[("path", path), ("contains", "ready")]));
    assert!(found.healthy, "{found:?}");
    assert_eq!(found.message, "found ready");
    let missing = plugin.check(&cfg(&[("path", path), ("contains", "degraded")]));
    assert!(!missing.healthy && missing.fault.is_none(), "{missing:?}");
    assert_eq!(missing.message, "not found: degraded");

    let outside = plugin.check(&cfg(&[("path", "/etc/passwd"), ("contains", "root")]));
    assert!(!outside.healthy, "{outside:?}");
    assert!(outside.message.contains("not granted"), "{outside:?}");
    let escape = format!("{}/../../etc/passwd", dir.display());
    let escape = plugin.check(&cfg(&[("path", &escape), ("contains", "root")]));
    assert!(
        !escape.healthy && escape.message.contains("not granted"),
        "{escape:?}"
    );

    let usage = plugin.check(&[]);
    assert!(usage.message.contains("required"), "{usage:?}");

    let err = Plugin::load(
        host(),
        &plugin_path("file-contains-c"),
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits::default(),
    )
    .expect_err("read-file not granted");
    assert!(err.to_string().contains("read-file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A grant's directory in which `status` is swapped, as fast as a thread can, between a
/// regular file ("service: ready") and what `make` puts at the path it is given; `read` runs
/// the C plugin on `status` meanwhile. The flipper stops when `read` returns or panics.
fn swapping_grant(
    tag: &str,
    make: impl Fn(&Path) + Send + 'static,
    read: impl FnOnce(&Plugin, &str),
) {
    let dir = std::env::temp_dir().join(format!("upkeep-wasm-swap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let status = dir.join("status");
    std::fs::write(&status, "service: ready\n").unwrap();
    let grants = Grants {
        read_file: vec![dir.clone()],
        log: true,
        ..Grants::default()
    };
    let plugin = load("file-contains-c", grants, Limits::default());
    // One swap at a time: each keeps two threads busy.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    struct Stop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Stop(Arc::default());
    let flag = stop.0.clone();
    let (d, target) = (dir.clone(), status.clone());
    let flipper = std::thread::spawn(move || {
        let (file, other) = (d.join(".file"), d.join(".other"));
        while !flag.load(Ordering::Relaxed) {
            std::fs::write(&file, "service: ready\n").unwrap();
            std::fs::rename(&file, &target).unwrap();
            make(&other);
            std::fs::rename(&other, &target).unwrap();
        }
    });
    read(&plugin, status.to_str().unwrap());
    drop(stop);
    flipper.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A link to a file outside the grant, swapped in after any check the host could make by
/// name: the plugin never reads what it points to.
#[test]
fn read_file_does_not_follow_a_link_swapped_into_the_grant() {
    let secret = std::env::temp_dir().join(format!("upkeep-wasm-secret-{}", std::process::id()));
    std::fs::write(&secret, "service: SECRET\n").unwrap();
    let target = secret.clone();
    swapping_grant(
        "link",
        move |at| std::os::unix::fs::symlink(&target, at).unwrap(),
        |plugin, path| {
            let (mut ready, mut refused, mut leaked) = (0, 0, 0);
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                let out = plugin.check(&cfg(&[("path", path), ("contains", "SECRET")]));
                if out.healthy {
                    leaked += 1;
                } else if out.message.starts_with("not found") {
                    ready += 1;
                } else {
                    refused += 1;
                }
            }
            eprintln!(
                "{ready} reads of the grant's file, {refused} refused, {leaked} of the secret"
            );
            assert_eq!(
                leaked, 0,
                "the plugin read outside its grant through a swapped-in link"
            );
            assert!(ready > 0 && refused > 0, "the swap did not race the reads");
        },
    );
    let _ = std::fs::remove_file(&secret);
}

#[allow(unsafe_code)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path, alive for the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// A FIFO nobody writes to, swapped in: each check ends at once (refused: not a regular
/// file) instead of blocking the plugin host's thread, and every plugin with it, for good.
#[test]
fn read_file_does_not_wait_on_a_fifo_swapped_into_the_grant() {
    swapping_grant("fifo", mkfifo, |plugin, path| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut ready, mut refused) = (0, 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until {
                    let out = plugin.check(&cfg(&[("path", path), ("contains", "ready")]));
                    if out.healthy {
                        ready += 1;
                    } else {
                        refused += 1;
                    }
                }
                let _ = tx.send(());
            });
            if rx.recv_timeout(Duration::from_secs(10)).is_err() {
                eprintln!("a check is stuck opening a FIFO; aborting");
                std::process::abort();
            }
        });
        eprintln!("{ready} reads of the grant's file, {refused} refused");
        assert!(ready > 0 && refused > 0, "the swap did not race the reads");
    });
}

#[test]
fn inspect_reads_metadata() {
    let (meta, _) = inspect(&plugin_path("hostile")).unwrap();
    assert_eq!(meta.name, "hostile");
    assert_eq!(meta.capabilities, vec![Capability::Log]);
    assert!(meta.check && meta.notify);
    let (meta, _) = inspect(&plugin_path("file-contains-c")).unwrap();
    assert!(meta.check && !meta.notify);
}

#[test]
fn infinite_loop_times_out() {
    let plugin = hostile();
    let started = Instant::now();
    let out = behave(plugin, "loop");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(!out.healthy);
    assert_eq!(out.fault, Some(Fault::Timeout), "{out:?}");
    assert!(out.message.contains("timed out after 200 ms"), "{out:?}");
    still_works(plugin);
}

#[test]
fn blocking_host_call_times_out() {
    let plugin = hostile();
    let started = Instant::now();
    let out = behave(plugin, "sleep");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.fault, Some(Fault::Timeout), "{out:?}");
    still_works(plugin);
}

#[test]
fn memory_bomb_is_capped() {
    let plugin = hostile();
    let out = behave(plugin, "alloc");
    assert!(!out.healthy);
    assert_eq!(out.fault, Some(Fault::MemoryLimit), "{out:?}");
    assert!(out.message.contains("memory limit of 16 MiB"), "{out:?}");

    let small = load(
        "hostile",
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_secs(1),
            memory: 4 * 1024 * 1024,
        },
    );
    let out = behave(&small, "alloc");
    assert_eq!(out.fault, Some(Fault::MemoryLimit), "{out:?}");
    assert!(out.message.contains("memory limit of 4 MiB"), "{out:?}");
    still_works(plugin);
}

#[test]
fn deep_recursion_is_stopped() {
    let plugin = hostile();
    let out = behave(plugin, "recurse");
    assert!(!out.healthy);
    assert_eq!(out.fault, Some(Fault::StackOverflow), "{out:?}");
    still_works(plugin);
}

#[test]
fn traps_are_reported() {
    let plugin = hostile();
    let out = behave(plugin, "panic");
    assert_eq!(out.fault, Some(Fault::Trap), "{out:?}");
    assert!(
        out.message.contains("hostile plugin panics on purpose"),
        "the panic message: {out:?}"
    );
    let out = behave(plugin, "unreachable");
    assert_eq!(out.fault, Some(Fault::Trap), "{out:?}");
    assert!(out.message.contains("unreachable"), "{out:?}");
    still_works(plugin);
}

/// Counts the log events plugins emit.
struct CountPluginLogs(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountPluginLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "upkeep::plugin" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn log_flood_is_capped() {
    use tracing_subscriber::layer::SubscriberExt;
    let plugin = load(
        "hostile",
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_secs(3),
            ..Limits::default()
        },
    );
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountPluginLogs(count.clone()));
    let started = Instant::now();
    let out = tracing::subscriber::with_default(subscriber, || behave(&plugin, "log-flood"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // A million calls may or may not fit in the timeout (a debug build is slow); either way the
    // daemon's log got at most the per-call cap.
    assert!(out.healthy || out.fault == Some(Fault::Timeout), "{out:?}");
    let logged = count.load(Ordering::Relaxed);
    assert!((1..=201).contains(&logged), "{logged} plugin log events");
}

#[test]
fn stdout_flood_is_discarded() {
    let plugin = load(
        "hostile",
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
    );
    let out = behave(&plugin, "stdout-flood");
    assert!(out.healthy, "{out:?}");
}

#[test]
fn undeclared_capability_is_refused_at_call_time() {
    // The operator granted read-file, but the plugin did not declare it: still refused.
    let grants = Grants {
        log: true,
        read_file: vec!["/etc".into()],
        ..Grants::default()
    };
    let plugin = load("hostile", grants, Limits::default());
    let out = plugin.check(&cfg(&[
        ("behaviour", "sneaky-read"),
        ("path", "/etc/hostname"),
    ]));
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.message, "host refused read-file");
}

#[test]
fn wasi_gives_no_files_network_or_environment() {
    let plugin = hostile();
    let out = plugin.check(&cfg(&[("behaviour", "fs"), ("path", "/etc/hostname")]));
    assert!(out.healthy, "{out:?}");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = plugin.check(&cfg(&[("behaviour", "net"), ("addr", &addr)]));
    assert!(out.healthy, "{out:?}");
    let out = behave(plugin, "env");
    assert!(out.healthy, "{out:?}");
}

#[test]
fn notify_hooks_run_and_are_contained() {
    let plugin = hostile();
    let t = |instance: &str| StateChange {
        instance: instance.into(),
        old_state: "BACKUP".into(),
        new_state: "MASTER".into(),
        priority: 100,
    };
    plugin.notify(&t("web")).unwrap();
    let started = Instant::now();
    let err = plugin.notify(&t("loop")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            err,
            PluginError::Call {
                fault: Fault::Timeout,
                ..
            }
        ),
        "{err}"
    );
    let err = plugin.notify(&t("panic")).unwrap_err();
    assert!(
        err.to_string().contains("notify hook panics on purpose"),
        "{err}"
    );

    let err = port_listener().notify(&t("web")).unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::NotExported {
                function: "notify",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn malformed_files_are_rejected() {
    let dir = std::env::temp_dir().join(format!("upkeep-wasm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Plugin::load(host(), &path, Grants::default(), Limits::default()).unwrap_err()
    };

    let err = load("garbage.wasm", b"this is not wasm at all");
    assert!(matches!(err, PluginError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("garbage.wasm"), "{err}");

    let err = load("core.wasm", b"\0asm\x01\0\0\0");
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let mut truncated = std::fs::read(plugin_path("port-listener")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = load("truncated.wasm", &truncated);
    assert!(matches!(err, PluginError::Invalid { .. }), "{err}");

    let err = Plugin::load(
        host(),
        &dir.join("absent.wasm"),
        Grants::default(),
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PluginError::Read { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The daemon's way: a separate `upkeep compile-plugin` process compiles, the machine code is
/// kept in the cache directory and loaded from there next time; a damaged file is replaced; a
/// bad component is refused with the same error as an in-process compile.
#[test]
fn compiled_code_is_kept_and_reused() {
    let dir = std::env::temp_dir().join(format!("upkeep-codecache-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cached_host = || {
        let cache = CodeCache::with_compiler(dir.clone(), env!("CARGO_BIN_EXE_upkeep").into())
            .expect("cache dir");
        PluginHost::with_code_cache(cache).expect("plugin host")
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let config = cfg(&[("port", &port)]);
    let grants = Grants {
        listening_sockets: true,
        log: true,
        ..Grants::default()
    };
    let path = plugin_path("port-listener");
    let load_with = |host: &PluginHost| {
        let started = Instant::now();
        let plugin = Plugin::load(host, &path, grants.clone(), Limits::default())
            .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
        (plugin, started.elapsed())
    };
    let code_files = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };

    let (plugin, first) = load_with(&cached_host());
    assert!(plugin.check(&config).healthy);
    let files = code_files();
    assert_eq!(files.len(), 1, "one compiled file, nothing else: {files:?}");
    let code = std::fs::read(&files[0]).unwrap();

    // A new host (a restarted daemon) loads the kept code: same file, not rewritten.
    let (plugin, again) = load_with(&cached_host());
    assert!(plugin.check(&config).healthy);
    assert_eq!(code_files(), files);
    assert_eq!(std::fs::read(&files[0]).unwrap(), code);
    eprintln!(
        "port-listener: compiled by the compiler process in {first:?}, loaded again in {again:?}"
    );

    // Damaged code is not run: it is compiled again and replaced.
    std::fs::write(&files[0], b"not machine code").unwrap();
    let (plugin, _) = load_with(&cached_host());
    assert!(plugin.check(&config).healthy);
    assert_eq!(std::fs::read(&files[0]).unwrap(), code);

    // A bad component: the compiler process's reason, as an in-process compile would give it.
    let bad = dir.join("truncated.wasm");
    let mut truncated = std::fs::read(&path).unwrap();
    truncated.truncate(truncated.len() / 2);
    std::fs::write(&bad, &truncated).unwrap();
    let cached =
        Plugin::load(&cached_host(), &bad, Grants::default(), Limits::default()).unwrap_err();
    let direct = Plugin::load(host(), &bad, Grants::default(), Limits::default()).unwrap_err();
    assert!(matches!(cached, PluginError::Invalid { .. }), "{cached}");
    assert_eq!(cached.to_string(), direct.to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn calls_reuse_the_compiled_component() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let plugin = Arc::new(port_listener());
    let load_time = started.elapsed();

    let config = cfg(&[("port", &port)]);
    let started = Instant::now();
    for _ in 0..100 {
        assert!(plugin.check(&config).healthy);
    }
    let per_call = started.elapsed() / 100;
    eprintln!(
        "port-listener: load (compile + metadata) {load_time:?}, check {per_call:?} per call"
    );
    assert!(
        per_call < Duration::from_millis(50),
        "{per_call:?} per call: is it recompiling?"
    );

    // Calls from several threads at once, as the daemon's blocking pool makes them.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let plugin = plugin.clone();
            let config = config.clone();
            std::thread::spawn(move || (0..25).all(|_| plugin.check(&config).healthy))
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
}

#[test]
fn a_looping_call_does_not_hold_up_others() {
    let plugin = Arc::new(load(
        "hostile",
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    ));
    let looping = {
        let plugin = plugin.clone();
        std::thread::spawn(move || behave(&plugin, "loop"))
    };
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    still_works(&plugin);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(looping.join().unwrap().fault, Some(Fault::Timeout));
}

#[test]
fn callable_from_the_daemons_runtime() {
    let plugin = Arc::new(port_listener());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let config = cfg(&[("port", &listener.local_addr().unwrap().port().to_string())]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // As the daemon does it.
        let (p, c) = (plugin.clone(), config.clone());
        let out = tokio::task::spawn_blocking(move || p.check(&c))
            .await
            .unwrap();
        assert!(out.healthy, "{out:?}");
        // Straight from async code (it blocks this thread, but works).
        let out = plugin.check(&config);
        assert!(out.healthy, "{out:?}");
    });
    // Dropping the last plugin inside async code must not panic either.
    rt.block_on(async move { drop(plugin) });
}

#[test]
fn async_calls_run_on_the_host_thread_and_a_loop_yields_to_others() {
    let plugin = Arc::new(load(
        "hostile",
        Grants {
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // As the daemon does it: the event loop's thread only awaits.
        let looping = tokio::spawn(
            plugin
                .clone()
                .check_async(Arc::new(cfg(&[("behaviour", "loop")]))),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let ok = plugin
            .clone()
            .check_async(Arc::new(cfg(&[("behaviour", "ok")])))
            .await;
        let waited = started.elapsed();
        assert!(ok.healthy, "{ok:?}");
        assert!(
            waited < Duration::from_millis(500),
            "a call waited {waited:?} behind a looping one"
        );
        let looped = looping.await.unwrap();
        assert_eq!(looped.fault, Some(Fault::Timeout), "{looped:?}");
        // The instance that timed out was thrown away; the next call still answers.
        let again = plugin
            .clone()
            .check_async(Arc::new(cfg(&[("behaviour", "ok")])))
            .await;
        assert!(again.healthy, "{again:?}");
        let hook = plugin
            .clone()
            .notify_async(StateChange {
                instance: "fine".into(),
                old_state: "BACKUP".into(),
                new_state: "MASTER".into(),
                priority: 100,
            })
            .await;
        assert!(hook.is_ok(), "{hook:?}");
    });
}

/// fanotify(7) holding every open of `path` until the returned descriptor is closed (a
/// permission event nobody answers): a read that hangs, as on a stuck network file system.
/// None where the kernel has no permission events.
#[allow(unsafe_code)]
fn hold_opens(path: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain integer arguments.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            libc::O_RDONLY as u32,
        )
    };
    if fd < 0 {
        eprintln!("fanotify_init: {}", std::io::Error::last_os_error());
        return None;
    }
    // SAFETY: the kernel just returned `fd`, owned by nobody else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `fd` is open, `c` a NUL-terminated path alive for the call.
    let rc = unsafe {
        libc::fanotify_mark(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::FAN_MARK_ADD,
            libc::FAN_OPEN_PERM,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if rc != 0 {
        eprintln!("fanotify_mark: {}", std::io::Error::last_os_error());
        return None;
    }
    Some(fd)
}

/// A read-file that hangs in the kernel ends at the call's deadline, as guest code does, and
/// the plugin host's thread goes on serving the other plugins meanwhile.
#[test]
fn a_hung_read_file_ends_at_the_deadline_and_others_go_on() {
    if upkeep::exec::security::effective_uid() != 0 {
        eprintln!("skipped: fanotify permission events need root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("upkeep-wasm-hang-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let status = dir.join("status");
    std::fs::write(&status, "service: ready\n").unwrap();
    let reader = Arc::new(load(
        "file-contains-c",
        Grants {
            read_file: vec![dir.clone()],
            log: true,
            ..Grants::default()
        },
        Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    ));
    let other = Arc::new(port_listener());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let Some(hold) = hold_opens(&status) else {
        panic!("this test needs fanotify permission events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS) and root");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Arc::new(cfg(&[
        ("path", status.to_str().unwrap()),
        ("contains", "ready"),
    ]));
    let (hung, answered) = rt.block_on(async {
        let started = Instant::now();
        let hung = tokio::spawn(reader.clone().check_async(config.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let other = tokio::time::timeout(
            Duration::from_secs(3),
            other.clone().check_async(Arc::new(cfg(&[("port", &port)]))),
        )
        .await;
        let hung = tokio::time::timeout(Duration::from_secs(3), hung).await;
        (hung.map(|h| (h.unwrap(), started.elapsed())), other)
    });
    // Whatever happened, let the held open go (the blocked thread then ends).
    drop(hold);
    let other = answered.expect("another plugin's check waited behind the hung read");
    assert!(other.healthy, "{other:?}");
    let (out, took) = hung.expect("the check with the hung read did not end at its deadline");
    eprintln!("hung read: {out:?} after {took:?}");
    assert!(!out.healthy, "{out:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Released, the file reads again.
    let again = rt.block_on(reader.clone().check_async(config));
    assert!(again.healthy, "{again:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sha256` pinning: the plugin loads when its file has the pinned digest (in either case, as
/// `upkeep plugin inspect` and `sha256sum` print it), and is refused with both digests when
/// not; `inspect` prints the digest to pin.
#[test]
fn a_pinned_plugin_loads_only_with_its_digest() {
    let path = plugin_path("port-listener");
    let (_, digest) = inspect(&path).expect("inspect");
    assert_eq!(digest.len(), 64);
    let grants = || Grants {
        listening_sockets: true,
        log: true,
        ..Grants::default()
    };
    let p = Plugin::load_pinned(host(), &path, grants(), Limits::default(), Some(&digest))
        .expect("the pinned digest loads");
    assert_eq!(p.sha256(), digest);
    let upper = digest.to_ascii_uppercase();
    Plugin::load_pinned(host(), &path, grants(), Limits::default(), Some(&upper))
        .expect("upper case too");
    let other = "0".repeat(64);
    let err = Plugin::load_pinned(host(), &path, grants(), Limits::default(), Some(&other))
        .expect_err("another digest is refused");
    assert!(
        matches!(&err, PluginError::DigestMismatch { want, found, .. } if *want == other && *found == digest),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&digest) && msg.contains(&other), "{msg}");
}
