//! `gradlab cert`: a local certificate authority and a server certificate signed by it, as
//! mkcert makes them, for `gradlab serve --tls-cert --tls-key` and clients' `--ca-cert`.
//!
//! Why not one self-signed certificate: `openssl req -x509` marks its certificate CA:TRUE, and
//! rustls (the gradlab client's TLS) refuses a CA certificate as a server's own
//! (`CaUsedAsEndEntity`). A CA that signs a separate server certificate is what every TLS
//! client accepts, and new server certificates (more host names, a renewal) stay trusted by
//! every client that already trusts the CA.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::CliError;

#[derive(Args, Debug)]
pub struct CertArgs {
    /// Where the files go: ca.pem, ca-key.pem, server.pem, server-key.pem. An existing ca.pem
    /// and ca-key.pem there sign the new server certificate instead of a new CA.
    #[arg(long, value_name = "DIR", default_value = "gradlab-tls")]
    pub out: PathBuf,
    /// A host name or IP address the server is reached by (repeatable) [default: localhost,
    /// 127.0.0.1, ::1].
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Days the server certificate is valid.
    #[arg(long, default_value_t = 825)]
    pub days: i64,
}

/// Days the CA is valid.
const CA_DAYS: i64 = 3650;

pub fn run(args: &CertArgs) -> Result<()> {
    if args.days < 1 {
        return Err(CliError(format!("--days: must be at least 1, got {}", args.days)).into());
    }
    let hosts = if args.hosts.is_empty() {
        vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()]
    } else {
        args.hosts.clone()
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let (ca_cert, ca_key) = (args.out.join("ca.pem"), args.out.join("ca-key.pem"));
    let now = OffsetDateTime::now_utc();
    let (issuer, made_ca) = if ca_cert.exists() && ca_key.exists() {
        (existing_ca(&ca_cert, &ca_key)?, false)
    } else {
        let key = KeyPair::generate().context("cannot generate a key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
        params.distinguished_name.push(DnType::CommonName, format!("gradlab local CA ({})", host_name()));
        params.distinguished_name.push(DnType::OrganizationName, "gradlab");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(CA_DAYS);
        let cert = params.self_signed(&key).context("cannot sign the CA certificate")?;
        write(&ca_cert, &cert.pem())?;
        write_secret(&ca_key, &key.serialize_pem())?;
        (Issuer::new(params, key), true)
    };
    let key = KeyPair::generate().context("cannot generate a key")?;
    let mut params = CertificateParams::new(hosts.clone()).map_err(|e| CliError(format!("--host: {e}")))?;
    params.distinguished_name.push(DnType::CommonName, hosts[0].clone());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(args.days);
    let cert = params.signed_by(&key, &issuer).context("cannot sign the server certificate")?;
    let (server_cert, server_key) = (args.out.join("server.pem"), args.out.join("server-key.pem"));
    write(&server_cert, &cert.pem())?;
    write_secret(&server_key, &key.serialize_pem())?;

    let dir = args.out.display();
    if made_ca {
        println!("made a CA: {dir}/ca.pem (give it to clients), {dir}/ca-key.pem (keep it private)");
    } else {
        println!("used the CA in {dir}/ca.pem");
    }
    println!("server certificate for {} (valid {} days):", hosts.join(", "), args.days);
    println!("  gradlab serve --tls-cert {dir}/server.pem --tls-key {dir}/server-key.pem --token TOKEN ...");
    println!("  gradlab --server https://{}:50051 --ca-cert {dir}/ca.pem --token TOKEN ls", url_host(&hosts[0]));
    Ok(())
}

fn existing_ca(cert: &Path, key: &Path) -> Result<Issuer<'static, KeyPair>> {
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
    let key_pair = KeyPair::from_pem(&read(key)?).map_err(|e| CliError(format!("{}: {e}", key.display())))?;
    Issuer::from_ca_cert_pem(&read(cert)?, key_pair).map_err(|e| CliError(format!("{}: {e}", cert.display())).into())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A private key, readable by its owner only.
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// An IPv6 address in a URL goes in brackets.
fn url_host(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}
