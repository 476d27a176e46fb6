//! The cluster's PKI: a CA made at first start, an admin client
//! certificate, and a serving certificate re-issued at every start so its
//! names always match the current flags. All keys are ECDSA P-256 (ring
//! cannot generate RSA keys).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of the cluster's PKI, under `<data-dir>/tls/`.
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// The API server's client certificate for nodes' HTTPS servers
    /// (logs, exec, attach, port-forward), as upstream's
    /// `apiserver-kubelet-client`.
    pub kubelet_client_cert: String,
    pub kubelet_client_key: String,
}

pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads the PKI from `dir`, creating the CA and admin certificate on first
/// use, and issues a fresh serving certificate for `hosts`.
pub fn ensure(dir: &Path, hosts: &[String]) -> anyhow::Result<Pki> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let p = |name: &str| -> PathBuf { dir.join(name) };
    if !p("ca.crt").exists() || !p("ca.key").exists() {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "skiff-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.self_signed(&key)?;
        write_private(&p("ca.key"), &key.serialize_pem())?;
        write_private(&p("ca.crt"), &cert.pem())?;
        // A new CA invalidates the old client certificates.
        let _ = fs::remove_file(p("admin.crt"));
        let _ = fs::remove_file(p("kubelet-client.crt"));
    }
    let ca_cert = read(&p("ca.crt"))?;
    let ca_key = KeyPair::from_pem(&read(&p("ca.key"))?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)?;

    if !p("admin.crt").exists() || !p("admin.key").exists() {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&p("admin.key"), &key.serialize_pem())?;
        write_private(&p("admin.crt"), &cert.pem())?;
    }

    issue_client(
        &issuer,
        &p("kubelet-client.crt"),
        &p("kubelet-client.key"),
        "kube-apiserver-kubelet-client",
        "system:masters",
    )?;

    let mut names = vec![
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        "127.0.0.1".into(),
    ];
    for h in hosts {
        if !names.contains(h) && (h.parse::<IpAddr>().is_ok() || !h.is_empty()) {
            names.push(h.clone());
        }
    }
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let server_cert = params.signed_by(&server_key, &issuer)?;

    Ok(Pki {
        ca_cert,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        admin_cert: read(&p("admin.crt"))?,
        admin_key: read(&p("admin.key"))?,
        kubelet_client_cert: read(&p("kubelet-client.crt"))?,
        kubelet_client_key: read(&p("kubelet-client.key"))?,
    })
}

/// Issues a client certificate (CN = user, O = group) unless one exists.
fn issue_client(
    issuer: &Issuer<'_, KeyPair>,
    cert_path: &Path,
    key_path: &Path,
    cn: &str,
    org: &str,
) -> anyhow::Result<()> {
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, issuer)?;
    write_private(key_path, &key.serialize_pem())?;
    write_private(cert_path, &cert.pem())?;
    Ok(())
}

/// Writes an admin kubeconfig (mode 0600) pointing at `server`.
pub fn write_kubeconfig(path: &Path, server: &str, pki: &Pki) -> anyhow::Result<()> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: skiff\n  context:\n    cluster: skiff\n    user: admin\ncurrent-context: skiff\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&pki.ca_cert),
        b64(&pki.admin_cert),
        b64(&pki.admin_key),
    );
    write_private(path, &text)
}
