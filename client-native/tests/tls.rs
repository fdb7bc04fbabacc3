//! `https://`: the command line joins a notebook through a TLS front (a self-signed
//! certificate, as on a self-hosted box) when told to trust it (`--ca-cert`), and refuses the
//! same server without it with a one-line error that says it is the certificate.

use client_native::{ReqwestHttp, SqliteStore};
use client_wasm::sync::SyncCore;
use client_wasm::Engine;
use shared_schema::model::Field;
use std::sync::Arc;

type R = Result<(), Box<dyn std::error::Error>>;

/// A TLS front on 127.0.0.1 for the plain server at `backend`; returns its port.
async fn tls_front(
    backend: std::net::SocketAddr,
    cert: &rcgen::CertifiedKey,
) -> Result<u16, Box<dyn std::error::Error>> {
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    actix_web::rt::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            actix_web::rt::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Ok(port)
}

#[actix_web::test]
async fn hearth_joins_over_https_when_it_trusts_the_certificate_and_refuses_otherwise() -> R {
    let dir = std::env::temp_dir().join(format!("hearth-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let running =
        hearth_server::app::start(hearth_server::Config::for_tests(dir.join("server"), None))
            .await?;
    let backend = running.addr;
    actix_web::rt::spawn(running.server);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let port = tls_front(backend, &cert).await?;
    let pem = dir.join("server.pem");
    std::fs::write(&pem, cert.cert.pem())?;
    let https = format!("https://localhost:{port}");

    // The owner connects over https too (trusting the certificate), and shares a link.
    let http = ReqwestHttp::with_roots(cert.cert.pem().as_bytes())?;
    let owner = SqliteStore::in_memory()?;
    let engine = Engine::create(owner.clone(), "Over TLS").await?;
    let ws = engine.id();
    client_wasm::sync::connect(&owner, &http, &https, &ws).await?;
    engine.refresh().await?;
    let note = engine.create_note("encrypted in transit").await?;
    engine
        .splice_text(&note, Field::Body, 0, 0, "hello")
        .await?;
    SyncCore::new(owner.clone(), http.clone())
        .sync_once(&ws, &|_, _| {})
        .await?;
    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Read,
        expires_in: None,
        label: "tls".into(),
    };
    let shared = client_wasm::sync::keys::share(&owner, &http, &ws, &request).await?;
    let key = shared.key.map(|k| k.to_text());
    let link = shared_schema::link::format(&https, &ws, &shared.minted.token, key.as_deref());

    let hearth = |data: &str, trust: bool| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"));
        c.arg("--data")
            .arg(dir.join(data))
            .env_remove("HEARTH_CA_CERT");
        if trust {
            c.arg("--ca-cert").arg(&pem);
        }
        c.args(["--json", "join", &link]);
        c.output()
    };
    let refused = hearth("untrusting.db", false).await?;
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success());
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let joined = hearth("trusting.db", true).await?;
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&joined.stdout)?;
    assert_eq!(info["notebook"], ws.as_str());
    assert_eq!(info["notes"], 1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
