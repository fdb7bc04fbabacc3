//! The web app's files (`--static-dir`): wasm, JavaScript and CSS are sent as their precompressed
//! `FILE.gz` (written by `scripts/precompress.mjs` at build time: zopfli, no compression work per
//! request) to browsers that accept gzip — a first load of about 1 MB instead of 2.7 MB — with
//! `Content-Encoding: gzip` and the original file's type. A `.gz` older than its file (a file
//! replaced by hand) is ignored. Everything else, and these files for a client that does not accept
//! gzip, is `actix-files` as before. Responses say `Vary: Accept-Encoding` so caches keep both.

use actix_files::NamedFile;
use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use std::path::{Component, Path, PathBuf};

/// The route pattern this module serves (under the static folder).
pub const PATTERN: &str = r"/{file:.+\.(?:wasm|js|css)}";

/// The static folder (canonical), as app data.
#[derive(Debug, Clone)]
pub struct StaticDir(pub PathBuf);

/// Whether the request's `Accept-Encoding` names gzip (and not with `q=0`).
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
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

/// The `.gz` beside `path`, if it is at least as new as `path`.
fn fresh_gz(path: &Path) -> Option<PathBuf> {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&gz)? >= modified(path)?).then_some(gz)
}

/// GET a wasm, JavaScript or CSS file: its `.gz` when the browser accepts gzip.
pub async fn serve(req: HttpRequest, dir: web::Data<StaticDir>) -> HttpResponse {
    let Some(path) = inside(&dir.0, req.match_info().query("file")) else {
        return HttpResponse::NotFound().finish();
    };
    let Ok(file) = NamedFile::open_async(&path).await else {
        return HttpResponse::NotFound().finish();
    };
    let file = match fresh_gz(&path).filter(|_| accepts_gzip(&req)) {
        Some(gz) => match NamedFile::open_async(&gz).await {
            Ok(packed) => packed
                .set_content_type(file.content_type().clone())
                .set_content_encoding(ContentEncoding::Gzip),
            Err(_) => file,
        },
        None => file,
    };
    let mut response = file.into_response(&req);
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}
