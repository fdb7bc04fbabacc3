//! The web app's files (`--static-dir`): wasm, JavaScript and CSS are sent as their precompressed
//! `FILE.br` or `FILE.gz` (written by `scripts/precompress.mjs` at build time: brotli 11 and
//! zopfli, no compression work per request) to browsers that accept them — brotli first (browsers
//! offer it over https and to localhost), gzip otherwise: a first load of about 0.81 MB or 1.02 MB
//! instead of 2.7 MB — with the matching `Content-Encoding` and the original file's type. A
//! precompressed file older than its original (a file replaced by hand) is ignored. Everything
//! else, and these files for a client that accepts neither, is `actix-files` as before. Responses
//! say `Vary: Accept-Encoding` so caches keep each. A file whose name carries Trunk's content hash
//! (`web-ui-58007b625c6857b3_bg.wasm`) never changes under that name: it is sent
//! `Cache-Control: public, max-age=31536000, immutable`, so a returning browser loads it from its
//! cache without asking (the service worker goes to the network first, through that cache); any
//! other (`sw.js`, the JS package) is `no-cache`: revalidated each time.

use actix_files::NamedFile;
use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use std::path::{Component, Path, PathBuf};

/// The route pattern this module serves (under the static folder).
pub const PATTERN: &str = r"/{file:.+\.(?:wasm|js|css)}";

/// The static folder (canonical), as app data.
#[derive(Debug, Clone)]
pub struct StaticDir(pub PathBuf);

/// Whether the request's `Accept-Encoding` names `coding` (or `*`), and not with `q=0`.
fn accepts(req: &HttpRequest, coding: &str) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|offered| {
            let mut parts = offered.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
        })
}

/// `rel` inside `dir`, or None when it would leave it (`..`, an absolute path, a link out).
fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let path = std::fs::canonicalize(dir.join(rel)).ok()?;
    path.starts_with(dir).then_some(path)
}

/// The precompressed `path` + `ext` beside `path`, if it is at least as new as `path`.
fn fresh(path: &Path, ext: &str) -> Option<PathBuf> {
    let mut packed = path.as_os_str().to_owned();
    packed.push(ext);
    let packed = PathBuf::from(packed);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&packed)? >= modified(path)?).then_some(packed)
}

/// The encodings served precompressed, best first: (`Accept-Encoding` name, file suffix, header).
const PRECOMPRESSED: [(&str, &str, ContentEncoding); 2] = [
    ("br", ".br", ContentEncoding::Brotli),
    ("gzip", ".gz", ContentEncoding::Gzip),
];

/// Whether a file name carries a build's content hash: `NAME-<12 to 16 lowercase hex>` before an
/// optional `_bg` and the extension (Trunk's names; the hash is a u64 in hex, leading zeros dropped).
fn content_hashed(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (12..=16).contains(&hash.len())
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// GET a wasm, JavaScript or CSS file: its `.br` or `.gz` when the browser accepts it.
pub async fn serve(req: HttpRequest, dir: web::Data<StaticDir>) -> HttpResponse {
    let Some(path) = inside(&dir.0, req.match_info().query("file")) else {
        return HttpResponse::NotFound().finish();
    };
    let Ok(file) = NamedFile::open_async(&path).await else {
        return HttpResponse::NotFound().finish();
    };
    let chosen = PRECOMPRESSED
        .iter()
        .filter(|(coding, ..)| accepts(&req, coding))
        .find_map(|(_, ext, encoding)| Some((fresh(&path, ext)?, *encoding)));
    let file = match chosen {
        Some((packed, encoding)) => match NamedFile::open_async(&packed).await {
            Ok(packed) => packed
                .set_content_type(file.content_type().clone())
                .set_content_encoding(encoding),
            Err(_) => file,
        },
        None => file,
    };
    let hashed = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(content_hashed);
    let mut response = file.into_response(&req);
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::content_hashed;

    #[test]
    fn only_names_that_carry_a_build_hash_are_cached_for_good() {
        for name in [
            "web-ui-58007b625c6857b3_bg.wasm",
            "web-ui-58007b625c6857b3.js",
            "web-ui-f35673a7402b2cb_bg.wasm",
            "style-299af176641dcddb.css",
        ] {
            assert!(content_hashed(name), "{name}");
        }
        for name in [
            "sw.js",
            "hearth.js",
            "hearth_bg.wasm",
            "app.js",
            "web-ui.js",
            "my-notes-app.css",
            "web-ui-58007B625C6857B3.js",
            "web-ui-abc.js",
            "x-0123456789abcdef0.js",
        ] {
            assert!(!content_hashed(name), "{name}");
        }
    }
}
