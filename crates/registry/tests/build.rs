//! `build` on the busybox fixture: COPY (with --chown), ADD of a tar,
//! RUN in a chroot with whiteouts carried into the layer, config
//! instructions, the step cache, and errors with line numbers.

use std::collections::BTreeMap;
use std::fs;

use skiff_images::{Reference, Store, fixtures, rootfs};
use skiff_registry::build::{self, BuildError, BuildOptions, ChrootRun};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn opts<'a>(ctx: &std::path::Path, df: &str, tag: &str) -> BuildOptions<'a> {
    BuildOptions {
        context: ctx.to_path_buf(),
        dockerfile: df.to_string(),
        tags: vec![Reference::parse(tag).unwrap()],
        build_args: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        no_cache: false,
        runner: &ChrootRun,
    }
}

#[test]
fn build_copy_add_run_and_cache() {
    if !is_root() || !fixtures::available() {
        eprintln!("skipped: needs root and /bin/busybox");
        return;
    }
    // Everything in a thread with its own mount namespace: no mount can
    // outlive the test.
    std::thread::spawn(|| {
        build::private_mount_namespace().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        fixtures::busybox_image(&store, "busybox").unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(ctx.join("site")).unwrap();
        fs::write(ctx.join("site/index.html"), "Hello World!\n").unwrap();
        fs::write(ctx.join("note.txt"), "note\n").unwrap();
        {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "inner/file", &b"abc"[..]).unwrap();
            fs::write(ctx.join("bundle.tar"), b.into_inner().unwrap()).unwrap();
        }
        let df = r#"
FROM busybox
ARG GREETING=default
ENV APP=/srv \
    MODE=prod
WORKDIR $APP
COPY site/ ./www/
COPY --chown=65534:65534 note.txt /etc/note.txt
ADD bundle.tar /opt/
RUN echo "$GREETING from $MODE" > /greeting && rm /etc/group && mkdir -p /data && id -u > /data/uid
USER nobody
EXPOSE 8080
LABEL org.example.name="hello web"
ENTRYPOINT ["httpd", "-f", "-p", "8080"]
CMD ["-h", "/srv/www"]
"#;
        let mut out = Vec::new();
        let desc = build::build(&store, &opts(&ctx, df, "hello:1"), &mut out)
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
        let log = String::from_utf8_lossy(&out).into_owned();
        assert!(log.contains("Step 1/13 : FROM busybox"), "{log}");
        assert!(log.contains("Successfully tagged hello:1"), "{log}");

        let img = store.image("hello:1").unwrap();
        let cfg = img.config.config.clone().unwrap();
        assert_eq!(cfg.entrypoint.unwrap(), ["httpd", "-f", "-p", "8080"]);
        assert_eq!(cfg.cmd.unwrap(), ["-h", "/srv/www"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        assert!(cfg.env.unwrap().contains(&"MODE=prod".to_string()));
        assert!(cfg.exposed_ports.unwrap().contains_key("8080/tcp"));
        assert_eq!(cfg.labels.unwrap()["org.example.name"], "hello web");
        assert_eq!(img.manifest.layers.len(), 5); // busybox + COPY + COPY + ADD + RUN

        // The root filesystem as a container would see it.
        let c = dir.path().join("c");
        let m = store.prepare_rootfs("hello:1", &c).unwrap();
        let r = &m.rootfs;
        let checks = std::panic::catch_unwind(|| {
            assert_eq!(
                fs::read_to_string(r.join("srv/www/index.html")).unwrap(),
                "Hello World!\n"
            );
            assert_eq!(
                fs::read_to_string(r.join("greeting")).unwrap(),
                "hello from prod\n"
            );
            assert_eq!(fs::read_to_string(r.join("data/uid")).unwrap(), "0\n");
            assert_eq!(fs::read_to_string(r.join("opt/inner/file")).unwrap(), "abc");
            assert!(
                !r.join("etc/group").exists(),
                "RUN's rm did not become a whiteout"
            );
            use std::os::unix::fs::MetadataExt;
            assert_eq!(fs::metadata(r.join("etc/note.txt")).unwrap().uid(), 65534);
        });
        rootfs::unmount(&c).unwrap();
        if let Err(p) = checks {
            std::panic::resume_unwind(p);
        }

        // Same inputs: every layer step comes from the cache, same image.
        let mut out = Vec::new();
        let again = build::build(&store, &opts(&ctx, df, "hello:2"), &mut out).unwrap();
        let log = String::from_utf8_lossy(&out);
        assert_eq!(log.matches("Using cache").count(), 4, "{log}");
        assert_eq!(
            store.image("hello:2").unwrap().manifest.layers,
            img.manifest.layers
        );
        let _ = (again, desc);
        // A changed COPY source misses the cache for that step and after.
        fs::write(ctx.join("site/index.html"), "changed\n").unwrap();
        let mut out = Vec::new();
        build::build(&store, &opts(&ctx, df, "hello:3"), &mut out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out).matches("Using cache").count(),
            0
        );

        // A failing RUN names its line.
        let err = build::build(
            &store,
            &opts(&ctx, "FROM busybox\n\nRUN exit 3\n", "bad"),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("Dockerfile line 3 (RUN)"), "{err}");
        assert!(store.resolve("bad").is_err());
    })
    .join()
    .unwrap();
}

#[test]
fn build_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cases = [
        (
            "FROM scratch\nCOPY a /\nFROBNICATE\n",
            "Dockerfile line 3: unknown instruction: FROBNICATE",
        ),
        (
            "FROM nothere:1\n",
            "Dockerfile line 1 (FROM): image not found: nothere:1",
        ),
        (
            "FROM scratch\nCOPY ../etc/passwd /\n",
            "Dockerfile line 2 (COPY): ../etc/passwd: outside the build context",
        ),
        (
            "FROM scratch\nCOPY missing /\n",
            "Dockerfile line 2 (COPY): missing:",
        ),
        (
            "FROM scratch\nFROM scratch\n",
            "Dockerfile line 2 (FROM): multi-stage",
        ),
    ];
    for (df, want) in cases {
        let err: BuildError =
            build::build(&store, &opts(dir.path(), df, "x"), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains(want), "{df:?}: {err}");
    }
    // FROM scratch + COPY works without root.
    fs::write(dir.path().join("f"), "x").unwrap();
    build::build(
        &store,
        &opts(dir.path(), "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", "s"),
        &mut Vec::new(),
    )
    .unwrap();
    let img = store.image("s").unwrap();
    assert_eq!(img.manifest.layers.len(), 1);
}

/// examples/hello-web builds (base from the host busybox, then the app)
/// and its root filesystem serves "Hello World!" with busybox httpd.
#[test]
fn hello_web_example_serves() {
    if !is_root() || !fixtures::available() {
        eprintln!("skipped: needs root and /bin/busybox");
        return;
    }
    std::thread::spawn(|| {
        build::private_mount_namespace().unwrap();
        let examples =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-web");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let ctx = dir.path().join("bb");
        fs::create_dir_all(&ctx).unwrap();
        fs::copy(fixtures::BUSYBOX, ctx.join("busybox")).unwrap();
        let base = fs::read_to_string(examples.join("base/Dockerfile")).unwrap();
        build::build(
            &store,
            &opts(&ctx, &base, "localhost/busybox:base"),
            &mut Vec::new(),
        )
        .unwrap();
        let app = fs::read_to_string(examples.join("Dockerfile")).unwrap();
        build::build(
            &store,
            &opts(&examples, &app, "hello-web:1"),
            &mut Vec::new(),
        )
        .unwrap();

        let c = dir.path().join("c");
        let m = store.prepare_rootfs("hello-web:1", &c).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("chroot")
            .args(["--userspec=65534:65534"])
            .arg(&m.rootfs)
            .args(["/bin/httpd", "-f", "-p", &port.to_string(), "-h", "/www"])
            .spawn()
            .unwrap();
        let got = (|| {
            use std::io::{Read, Write};
            for _ in 0..100 {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
                    let mut out = String::new();
                    s.read_to_string(&mut out).ok()?;
                    return Some(out);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            None
        })();
        let _ = child.kill();
        let _ = child.wait();
        rootfs::unmount(&c).unwrap();
        let got = got.expect("httpd did not answer");
        assert!(got.ends_with("Hello World!\n"), "{got}");
    })
    .join()
    .unwrap();
}
