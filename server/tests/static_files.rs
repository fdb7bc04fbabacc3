//! The web app's files: wasm, JavaScript and CSS go out as their precompressed `.gz` to a browser
//! that accepts gzip (and as they are to one that does not, or when the `.gz` is stale); a path
//! that tries to leave the static folder is refused.

mod common;

use common::{start_with, temp_dir, R};
use std::time::{Duration, SystemTime};

#[actix_web::test]
async fn app_files_are_sent_precompressed_only_to_browsers_that_accept_gzip() -> R {
    let web = temp_dir();
    std::fs::write(web.join("index.html"), "<html></html>")?;
    std::fs::write(web.join("app.js"), "console.log('plain')")?;
    std::fs::write(web.join("app.js.gz"), b"\x1f\x8bpretend-gzip")?;
    std::fs::write(web.join("app.css"), "body{}")?;
    std::fs::write(web.join("app.css.gz"), b"\x1f\x8bstale")?;
    // The CSS was replaced after its .gz was written: the .gz is stale.
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(web.join("app.css.gz"))?
        .set_modified(old)?;
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

    let packed = get("/app.js", Some("gzip, deflate, br")).await?;
    assert_eq!(packed.status(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header(&packed, "content-encoding"), "gzip");
    assert!(header(&packed, "content-type").contains("javascript"));
    assert_eq!(header(&packed, "vary"), "Accept-Encoding");
    assert!(!header(&packed, "content-security-policy").is_empty());
    assert_eq!(packed.bytes().await?.as_ref(), b"\x1f\x8bpretend-gzip");

    for accept in [None, Some("br"), Some("gzip;q=0, br")] {
        let plain = get("/app.js", accept).await?;
        assert_eq!(header(&plain, "content-encoding"), "", "{accept:?}");
        assert_eq!(plain.text().await?, "console.log('plain')");
    }
    let stale = get("/app.css", Some("gzip")).await?;
    assert_eq!(header(&stale, "content-encoding"), "");
    assert_eq!(stale.text().await?, "body{}");

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
