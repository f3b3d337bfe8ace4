//! `torsion cert`: a self-signed certificate and key for `tls:` endpoints.
//!
//! The usual `openssl req -x509 …` one-liner makes a *CA* certificate
//! (`basicConstraints CA:TRUE`), which rustls — rightly — refuses as a
//! server's own certificate (`CaUsedAsEndEntity`). This writes a leaf
//! certificate (rcgen, `CA:FALSE`, the given names as subject alternative
//! names) that works both as the server's certificate and as the `--ca` a
//! client trusts.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::CertArgs;

/// Runs `torsion cert`.
pub fn run(args: CertArgs) -> Result<()> {
    let names = if args.names.is_empty() {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    } else {
        args.names.clone()
    };
    let cert_path = args.out.join("cert.pem");
    let key_path = args.out.join("key.pem");
    for p in [&cert_path, &key_path] {
        if p.exists() && !args.force {
            bail!("{} exists (use --force to replace it)", p.display());
        }
    }
    let mut params = rcgen::CertificateParams::new(names.clone())
        .with_context(|| format!("invalid name among {names:?}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    let now = time_now();
    params.not_before = now;
    params.not_after = now + args.valid_for;
    let key = rcgen::KeyPair::generate().context("cannot generate a key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    let (cert, key) = (cert_path.display(), key_path.display());
    println!(
        "torsion: wrote {cert} (self-signed leaf certificate for {}) and {key}",
        names.join(", ")
    );
    println!("  serve: torsion serve echo --listen tls:7443:interface=127.0.0.1:certKey={cert}:privateKey={key}");
    println!(
        "  load:  torsion load echo --tls --ca {cert} --server-name {} --target 127.0.0.1:7443",
        names[0]
    );
    Ok(())
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}
