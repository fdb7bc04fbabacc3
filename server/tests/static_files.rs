//! The web app's files: wasm, JavaScript and CSS go out as their precompressed `.br` to a browser
//! that accepts brotli, `.gz` to one that accepts gzip (and as they are to one that accepts neither,
//! or when the precompressed file is stale); a path that tries to leave the static folder is refused.

mod common;

use common::{start_with, temp_dir, R};
use std::time::{Duration, SystemTime};

#[actix_web::test]
async fn app_files_are_sent_precompressed_only_to_browsers_that_accept_brotli_or_gzip() -> R {
    let web = temp_dir();
    std::fs::write(web.join("index.html"), "<html></html>")?;
    std::fs::write(web.join("app.js"), "console.log('plain')")?;
    std::fs::write(web.join("app.js.gz"), b"\x1f\x8bpretend-gzip")?;
    std::fs::write(web.join("app.js.br"), b"pretend-brotli")?;
    std::fs::write(web.join("app.css"), "body{}")?;
    std::fs::write(web.join("app.css.gz"), b"\x1f\x8bstale")?;
    std::fs::write(web.join("app.css.br"), b"stale")?;
    // The CSS was replaced after its .gz and .br were written: both are stale.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for stale in ["app.css.gz", "app.css.br"] {
        std::fs::File::options()
            .write(true)
            .open(web.join(stale))?
            .set_modified(old)?;
    }
    let outside = temp_dir();
    std::fs::write(outside.join("secret.js"), "secret")?;
    let s = start_with(|c| c.static_dir = web.clone()).await?;
    let get = |path: &str, accept: Option<&str>| {
        let mut r = s.client.get(format!("{}{path}", s.url));
        if let Some(a) = accept {
            r = r.header("Accept-Encoding", a);
        }
        r.send()
    };

    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // Brotli first when offered, gzip otherwise, as they are when neither is (or both are refused).
    for (accept, encoding, body) in [
        (
            Some("gzip, deflate, br, zstd"),
            "br",
            &b"pretend-brotli"[..],
        ),
        (Some("br"), "br", b"pretend-brotli"),
        (Some("gzip, deflate"), "gzip", b"\x1f\x8bpretend-gzip"),
        (Some("br;q=0, gzip"), "gzip", b"\x1f\x8bpretend-gzip"),
        (None, "", b"console.log('plain')"),
        (Some("deflate"), "", b"console.log('plain')"),
        (Some("gzip;q=0, br;q=0.0"), "", b"console.log('plain')"),
    ] {
        let r = get("/app.js", accept).await?;
        assert_eq!(r.status(), 200, "{accept:?}");
        assert_eq!(header(&r, "content-encoding"), encoding, "{accept:?}");
        assert!(
            header(&r, "content-type").contains("javascript"),
            "{accept:?}"
        );
        assert_eq!(header(&r, "vary"), "Accept-Encoding", "{accept:?}");
        assert!(!header(&r, "content-security-policy").is_empty());
        assert_eq!(r.bytes().await?.as_ref(), body, "{accept:?}");
    }
    // A name with a build's content hash is cached for good; any other is revalidated.
    std::fs::write(web.join("web-ui-58007b625c6857b3_bg.wasm"), b"\0asm")?;
    let hashed = get("/web-ui-58007b625c6857b3_bg.wasm", None).await?;
    assert_eq!(hashed.status(), 200);
    assert_eq!(
        header(&hashed, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let plain = get("/app.js", Some("br")).await?;
    assert_eq!(header(&plain, "cache-control"), "no-cache");
    for accept in ["gzip", "br, gzip"] {
        let stale = get("/app.css", Some(accept)).await?;
        assert_eq!(header(&stale, "content-encoding"), "", "{accept}");
        assert_eq!(stale.text().await?, "body{}");
    }

    let secret = outside.strip_prefix(web.parent().ok_or("root")?)?;
    for path in [
        "/missing.js".to_owned(),
        format!("/../{}/secret.js", secret.display()),
        format!("/%2e%2e/{}/secret.js", secret.display()),
        format!("/..%2f{}%2fsecret.js", secret.display()),
    ] {
        let r = get(&path, Some("gzip")).await?;
        assert_ne!(r.status(), 200, "{path}");
        assert_ne!(r.text().await?, "secret", "{path}");
    }
    // Everything else is served as before.
    let index = get("/", Some("gzip")).await?;
    assert_eq!(index.status(), 200);
    assert_eq!(index.text().await?, "<html></html>");
    Ok(())
}
