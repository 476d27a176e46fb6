//! The registry over loopback: our client pushes and pulls, skopeo (a
//! client no one here wrote) copies both ways, bad uploads are refused.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use skiff_images::client::Client;
use skiff_images::{Digest, Reference, Store, fixtures};
use skiff_registry::{Registry, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(data: &Path) -> String {
    let registry = Arc::new(Registry::open(data).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, registry));
    addr
}

/// One raw HTTP/1.1 request; returns the status line and body.
async fn raw(addr: &str, head: &str, body: &[u8], close_early: bool) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    if close_early {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn start_upload(addr: &str, name: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v2/{name}/blobs/uploads/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    out.lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir.path().join("registry")).await;
    let (status, _) = raw(
        &addr,
        &format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    )
    .await;
    assert!(status.contains("200"), "{status}");

    // Digest mismatch on a monolithic upload: 400 DIGEST_INVALID.
    let wrong = Digest::of(b"something else");
    let (status, body) = raw(
        &addr,
        &format!("POST /v2/t/blobs/uploads/?digest={wrong} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"),
        b"hello",
        false,
    )
    .await;
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("DIGEST_INVALID"), "{body}");

    // Chunked upload: two PATCHes then PUT; a wrong Content-Range is 416.
    let loc = start_upload(&addr, "t").await;
    let good = Digest::of(b"hello world");
    for (range, chunk) in [("0-5", &b"hello "[..]), ("6-10", b"world")] {
        let (status, _) = raw(
            &addr,
            &format!("PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nContent-Range: {range}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", chunk.len()),
            chunk,
            false,
        )
        .await;
        assert!(status.contains("202"), "{status}");
    }
    let (status, _) = raw(&addr, &format!("PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nContent-Range: 3-4\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"), b"x", false).await;
    assert!(status.contains("416"), "{status}");
    let (status, _) = raw(&addr, &format!("PUT {loc}?digest={good} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), b"", false).await;
    assert!(status.contains("201"), "{status}");
    let (status, body) = raw(
        &addr,
        &format!("GET /v2/t/blobs/{good} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    )
    .await;
    assert!(
        status.contains("200") && body == "hello world",
        "{status} {body}"
    );

    // Cross-repository mount of a present blob: 201, no upload.
    let (status, _) = raw(&addr, &format!("POST /v2/other/blobs/uploads/?mount={good}&from=t HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), b"", false).await;
    assert!(status.contains("201"), "{status}");
    // Mount of an absent blob falls back to an upload session: 202.
    let (status, _) = raw(&addr, &format!("POST /v2/other/blobs/uploads/?mount={wrong}&from=t HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), b"", false).await;
    assert!(status.contains("202"), "{status}");

    // Truncated upload: the client promises 100 bytes, sends 10, goes away.
    let loc = start_upload(&addr, "t").await;
    let d100 = Digest::of(&[7u8; 100]);
    let (status, _) = raw(
        &addr,
        &format!("PUT {loc}?digest={d100} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n"),
        &[7u8; 10],
        true,
    )
    .await;
    assert!(!status.contains("201"), "{status}");
    let (status, _) = raw(
        &addr,
        &format!("HEAD /v2/t/blobs/{d100} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    )
    .await;
    assert!(status.contains("404"), "{status}");
    let (status, _) = raw(
        &addr,
        &format!("GET {loc} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    )
    .await;
    assert!(
        status.contains("404"),
        "truncated upload still open: {status}"
    );

    // A manifest whose blobs are missing is refused.
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{wrong}","size":1}},"layers":[]}}"#
    );
    let (status, body) = raw(&addr, &format!("PUT /v2/t/manifests/x HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", m.len()), m.as_bytes(), false).await;
    assert!(
        status.contains("400") && body.contains("MANIFEST_BLOB_UNKNOWN"),
        "{status} {body}"
    );

    if !fixtures::available() {
        return;
    }
    // Our client: push, delete locally, pull back by digest.
    let local = Store::open(&dir.path().join("local")).unwrap();
    let desc = fixtures::busybox_image(&local, "busybox").unwrap();
    let client = Client::new(true, None);
    let remote = Reference::parse(&format!("{addr}/library/busybox:1.0")).unwrap();
    let pushed = client.push(&local, "busybox", &remote).await.unwrap();
    assert_eq!(pushed, desc.digest);
    // Pushing again skips every blob (HEAD says present).
    client.push(&local, "busybox", &remote).await.unwrap();
    local.untag(&"busybox".parse().unwrap()).unwrap();
    local.gc().unwrap();
    let by_digest = Reference::parse(&format!("{addr}/library/busybox@{}", desc.digest)).unwrap();
    let pulled = client.pull(&local, &by_digest).await.unwrap();
    assert_eq!(pulled.digest, desc.digest);
    local
        .unpack_image(&local.image(&by_digest.to_string()).unwrap())
        .unwrap();
    let (status, body) = raw(&addr, &format!("GET /v2/library/busybox/tags/list HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), b"", false).await;
    assert!(status.contains("200") && body.contains("\"1.0\""), "{body}");
    let (_, body) = raw(
        &addr,
        &format!("GET /v2/_catalog HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
        false,
    )
    .await;
    assert!(
        body.contains("library/busybox") && !body.contains("\"t\""),
        "{body}"
    );
    let (status, _) = raw(&addr, &format!("HEAD /v2/library/busybox/manifests/1.0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), b"", false).await;
    assert!(status.contains("200"), "{status}");
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(format!("HEAD /v2/library/busybox/manifests/1.0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = String::new();
    s.read_to_string(&mut head).await.unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains(&format!("content-length: {}", desc.size)),
        "{head}"
    );
    assert!(
        head.contains(&format!("docker-content-digest: {}", desc.digest)),
        "{head}"
    );
    // Tags pagination: n=1 gives one tag and a Link to the next page.
    client
        .push(
            &local,
            &by_digest.to_string(),
            &Reference::parse(&format!("{addr}/library/busybox:2.0")).unwrap(),
        )
        .await
        .unwrap();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(format!("GET /v2/library/busybox/tags/list?n=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).await.unwrap();
    assert!(page.contains(r#""tags":["1.0"]"#), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("link: </v2/library/busybox/tags/list?n=1&last=1.0>; rel=\"next\""),
        "{page}"
    );
    let missing = Reference::parse(&format!("{addr}/library/nope:1")).unwrap();
    assert!(matches!(
        client.pull(&local, &missing).await,
        Err(skiff_images::Error::ImageNotFound(_))
    ));

    // skopeo both ways: our store is an OCI layout skopeo reads directly.
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skopeo interop skipped: not installed");
        return;
    }
    local.tag(&"busybox".parse().unwrap(), &desc).unwrap();
    let out_layout = dir.path().join("skopeo-out");
    let addr2 = addr.clone();
    let root = local.root().to_path_buf();
    let out2 = out_layout.clone();
    let results = tokio::task::spawn_blocking(move || {
        let run = |src: String, dst: String| {
            let o = Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    &src,
                    &dst,
                ])
                .output()
                .unwrap();
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        vec![
            run(
                format!("oci:{}:docker.io/library/busybox:latest", root.display()),
                format!("docker://{addr2}/skopeo/bb:v1"),
            ),
            run(
                format!("docker://{addr2}/skopeo/bb:v1"),
                format!("oci:{}:v1", out2.display()),
            ),
            run(
                format!("docker://{addr2}/library/busybox:1.0"),
                format!("docker://{addr2}/skopeo/copy:v2"),
            ),
        ]
    })
    .await
    .unwrap();
    for (ok, err) in &results {
        assert!(ok, "skopeo: {err}");
    }
    // What skopeo pushed, our client pulls and unpacks.
    let again = Store::open(&dir.path().join("again")).unwrap();
    let r = Reference::parse(&format!("{addr}/skopeo/bb:v1")).unwrap();
    let d = client.pull(&again, &r).await.unwrap();
    again
        .unpack_image(&again.image(&r.to_string()).unwrap())
        .unwrap();
    assert_eq!(d.digest, desc.digest, "skopeo changed the manifest");
    // What skopeo wrote as an OCI layout holds the same manifest.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"][0]["digest"], desc.digest.as_str());
}

/// The client over TLS (the default): a registry with a self-signed
/// certificate the client is told to trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_over_tls() {
    if !fixtures::available() {
        return;
    }
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(Registry::open(&dir.path().join("registry")).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(skiff_registry::serve_tls(
        listener,
        registry,
        Arc::new(server),
    ));

    let local = Store::open(&dir.path().join("local")).unwrap();
    let desc = fixtures::busybox_image(&local, "busybox").unwrap();
    let remote = Reference::parse(&format!("{addr}/tls/busybox:1")).unwrap();
    // Untrusted certificate: refused.
    let err = Client::new(false, None)
        .push(&local, "busybox", &remote)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    let client = Client::with_roots(false, None, cert.cert.pem().as_bytes());
    assert_eq!(
        client.push(&local, "busybox", &remote).await.unwrap(),
        desc.digest
    );
    let other = Store::open(&dir.path().join("other")).unwrap();
    assert_eq!(
        client.pull(&other, &remote).await.unwrap().digest,
        desc.digest
    );
}

/// An image index (multi-platform) pushed by our client and pulled back:
/// the server checks its children exist, the pull picks this platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_push_pull() {
    if !fixtures::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir.path().join("registry")).await;
    let local = Store::open(&dir.path().join("local")).unwrap();
    let manifest = fixtures::busybox_image(&local, "busybox").unwrap();
    let mut child = manifest.clone();
    child.platform = Some(skiff_images::oci::Platform {
        architecture: skiff_images::oci::host_arch().to_string(),
        os: "linux".to_string(),
        variant: None,
        extra: Default::default(),
    });
    let mut other = child.clone();
    other.platform.as_mut().unwrap().architecture = "s390x".to_string();
    // A second entry for another platform whose manifest is not here.
    other.digest = Digest::of(b"not here");
    let index = skiff_images::oci::Index {
        manifests: vec![other, child],
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&index).unwrap();
    let idx_digest = local.put_bytes(&bytes).unwrap();
    let idx = skiff_images::oci::Descriptor::new(
        skiff_images::oci::MEDIA_OCI_INDEX,
        idx_digest.clone(),
        bytes.len() as u64,
    );
    local.tag(&"multi".parse().unwrap(), &idx).unwrap();
    let client = Client::new(true, None);
    let remote = Reference::parse(&format!("{addr}/multi/busybox:1")).unwrap();
    // The absent s390x manifest makes the registry refuse the index.
    let err = client.push(&local, "multi", &remote).await.unwrap_err();
    assert!(err.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{err}");
    // Without it, the index goes through and pulls back to this platform.
    let index = skiff_images::oci::Index {
        manifests: vec![index.manifests[1].clone()],
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = local.put_bytes(&bytes).unwrap();
    let idx = skiff_images::oci::Descriptor::new(
        skiff_images::oci::MEDIA_OCI_INDEX,
        d.clone(),
        bytes.len() as u64,
    );
    local.tag(&"multi".parse().unwrap(), &idx).unwrap();
    assert_eq!(client.push(&local, "multi", &remote).await.unwrap(), d);
    let fresh = Store::open(&dir.path().join("fresh")).unwrap();
    let pulled = client.pull(&fresh, &remote).await.unwrap();
    assert_eq!(pulled.digest, d);
    let img = fresh.image(&remote.to_string()).unwrap();
    assert_eq!(img.manifest_digest, manifest.digest);
}
