//! Node join, both ends. The server keeps a token in `<data-dir>/token`:
//! `SKIFF1<sha256 of the CA PEM, hex>::<secret>`. A joining agent fetches
//! the CA (`GET /skiff/v1/ca`, without trusting the connection yet),
//! checks it against the hash, then asks `POST /skiff/v1/join` over a
//! connection verified with that CA, bearer = the secret, for its client
//! certificate (`system:node:NAME`, group `system:nodes`) and a serving
//! certificate. Full bootstrap-token RBAC comes later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use serde_json::{Value, json};

/// The token file in the server's data dir.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("token")
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Reads or creates the join token for `ca_pem`.
pub fn ensure_token(data_dir: &Path, ca_pem: &str) -> anyhow::Result<String> {
    let path = token_path(data_dir);
    let hash = sha256_hex(ca_pem.as_bytes());
    if let Ok(t) = std::fs::read_to_string(&path)
        && let Some((h, _)) = parse_token(t.trim())
        && h == hash
    {
        return Ok(t.trim().to_string());
    }
    let mut secret = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
        .context("reading /dev/urandom")?;
    let token = format!("SKIFF1{hash}::{}", hex::encode(secret));
    crate::certs::write_private(&path, &token)?;
    Ok(token)
}

/// (CA hash, secret).
pub fn parse_token(t: &str) -> Option<(&str, &str)> {
    let rest = t.strip_prefix("SKIFF1")?;
    let (hash, secret) = rest.split_once("::")?;
    (hash.len() == 64 && !secret.is_empty()).then_some((hash, secret))
}

/// The server's side: issues node certificates with the cluster CA.
pub struct Issuing {
    ca_pem: String,
    ca_key_pem: String,
    secret: String,
}

impl Issuing {
    pub fn new(tls_dir: &Path, token: &str) -> anyhow::Result<Issuing> {
        let (_, secret) = parse_token(token).context("malformed join token")?;
        Ok(Issuing {
            ca_pem: std::fs::read_to_string(tls_dir.join("ca.crt"))?,
            ca_key_pem: std::fs::read_to_string(tls_dir.join("ca.key"))?,
            secret: secret.to_string(),
        })
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<(String, String)> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl skiff_apiserver::join::Joiner for Issuing {
    fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    fn authorize(&self, secret: &str) -> bool {
        let (a, b) = (secret.as_bytes(), self.secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn issue(&self, node: &str, addresses: &[String]) -> Result<Value, String> {
        let run = || -> anyhow::Result<Value> {
            let mut client = CertificateParams::new(Vec::<String>::new())?;
            client
                .distinguished_name
                .push(DnType::CommonName, format!("system:node:{node}"));
            client
                .distinguished_name
                .push(DnType::OrganizationName, "system:nodes");
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            client.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let (cc, ck) = self.sign(client)?;
            let mut names = vec![node.to_string()];
            names.extend(addresses.iter().cloned());
            let mut serving = CertificateParams::new(names)?;
            serving.distinguished_name.push(DnType::CommonName, node);
            serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            serving.not_after = rcgen::date_time_ymd(2036, 1, 1);
            let (sc, sk) = self.sign(serving)?;
            Ok(
                json!({"ca": self.ca_pem, "clientCert": cc, "clientKey": ck, "servingCert": sc, "servingKey": sk}),
            )
        };
        run().map_err(|e| format!("issuing node certificates: {e}"))
    }
}

/// Accepts any server certificate: only for fetching the CA, which is then
/// checked against the hash in the token.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One HTTP/1.1 request over TLS; returns (status, body).
async fn request(
    tls: rustls::ClientConfig,
    server: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    use http_body_util::BodyExt;
    let uri: http::Uri = server.parse().context("invalid --server URL")?;
    let host = uri
        .host()
        .context("no host in --server")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let name = rustls_pki_types::ServerName::try_from(host.clone())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(b) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {b}"));
    }
    let req = req.body(http_body_util::Full::new(bytes::Bytes::from(
        body.unwrap_or_default(),
    )))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, bytes))
}

/// The agent's side: joins (once; later starts reuse the kubeconfig) and
/// returns the path of its kubeconfig.
pub async fn join(
    server: &str,
    token: &str,
    data_dir: &Path,
    node: &str,
    addresses: &[String],
) -> anyhow::Result<PathBuf> {
    let kubeconfig = data_dir.join("agent-kubeconfig.yaml");
    if kubeconfig.exists() {
        return Ok(kubeconfig);
    }
    let (hash, secret) =
        parse_token(token).context("malformed token: expected SKIFF1<hash>::<secret>")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let insecure = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider.clone())))
        .with_no_client_auth();
    let (status, ca) = request(
        insecure,
        server,
        "GET",
        skiff_apiserver::join::CA_PATH,
        None,
        None,
    )
    .await?;
    anyhow::ensure!(status == 200, "fetching the cluster CA: HTTP {status}");
    anyhow::ensure!(
        sha256_hex(&ca) == hash,
        "the server's CA does not match the token's hash"
    );
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(&ca)
    {
        roots.add(cert.context("invalid CA PEM")?)?;
    }
    let verified = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let body = json!({"nodeName": node, "addresses": addresses}).to_string();
    let (status, res) = request(
        verified,
        server,
        "POST",
        skiff_apiserver::join::JOIN_PATH,
        Some(secret),
        Some(body),
    )
    .await?;
    anyhow::ensure!(
        status == 200,
        "join refused: HTTP {status}: {}",
        String::from_utf8_lossy(&res)
    );
    let b: Value = serde_json::from_slice(&res).context("invalid join answer")?;
    let field = |k: &str| {
        b[k].as_str()
            .map(str::to_string)
            .with_context(|| format!("join answer lacks {k}"))
    };
    let tls_dir = data_dir.join("tls");
    std::fs::create_dir_all(&tls_dir)?;
    crate::certs::write_private(&tls_dir.join("kubelet.crt"), &field("servingCert")?)?;
    crate::certs::write_private(&tls_dir.join("kubelet.key"), &field("servingKey")?)?;
    // The node's streaming server verifies the API server's client
    // certificate against the cluster CA.
    crate::certs::write_private(&tls_dir.join("ca.crt"), &field("ca")?)?;
    let pki = crate::certs::Pki {
        ca_cert: field("ca")?,
        server_cert: String::new(),
        server_key: String::new(),
        admin_cert: field("clientCert")?,
        admin_key: field("clientKey")?,
        kubelet_client_cert: String::new(),
        kubelet_client_key: String::new(),
    };
    crate::certs::write_kubeconfig(&kubeconfig, server, &pki)?;
    Ok(kubeconfig)
}
