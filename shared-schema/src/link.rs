//! Share links: `{server}/#/join/{workspace}?t={token}`. The token rides in the URL fragment, so
//! the browser never sends it to the server with the page request (it stays out of server logs).
//! A link is input from someone else: parsing checks its shape; the server checks the token.

use thiserror::Error;

/// The parts of a share link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The server's base URL (`scheme://host[:port]`, no trailing slash).
    pub server_url: String,
    /// The workspace id.
    pub workspace: String,
    /// The access token.
    pub token: String,
    /// The notebook's key for this link (`&k=`), for an encrypted notebook.
    pub key: Option<String>,
}

/// A text that is not a share link.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("this is not a Hearth share link: it looks like https://HOST/#/join/NOTEBOOK?t=TOKEN")]
pub struct NotALink;

/// The link for `workspace` and `token` on the server at `server_url`, with the notebook's key
/// for this link (`&k=`, end-to-end encryption) when it has one. The key is in the fragment too:
/// the browser never sends it to the server.
pub fn format(server_url: &str, workspace: &str, token: &str, key: Option<&str>) -> String {
    let key = key.map(|k| format!("&k={k}")).unwrap_or_default();
    format!(
        "{}/#/join/{workspace}?t={token}{key}",
        server_url.trim_end_matches('/')
    )
}

/// The key (`&k=`) of a link's fragment, if it has one.
pub fn key_of(fragment: &str) -> Option<String> {
    let (_, query) = fragment.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("k="))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Reads a whole link.
pub fn parse(link: &str) -> Result<ShareLink, NotALink> {
    let (server, fragment) = link.trim().split_once("/#").ok_or(NotALink)?;
    let server = server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) || server.len() < 9 {
        return Err(NotALink);
    }
    let fragment = format!("#{fragment}");
    let (workspace, token) = parse_fragment(&fragment).ok_or(NotALink)?;
    Ok(ShareLink {
        server_url: server.to_owned(),
        workspace,
        token,
        key: key_of(&fragment),
    })
}

/// Reads the fragment of a link (`#/join/{workspace}?t={token}[&…]`): (workspace, token).
pub fn parse_fragment(fragment: &str) -> Option<(String, String)> {
    let rest = fragment.strip_prefix("#/join/")?;
    let (workspace, query) = rest.split_once("?t=")?;
    let token = query.split('&').next()?;
    (!workspace.is_empty() && !token.is_empty()).then(|| (workspace.to_owned(), token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_reads_back_as_it_was_made() -> Result<(), NotALink> {
        let link = format("http://127.0.0.1:8080/", "ws-1", "ey.a.b", None);
        assert_eq!(link, "http://127.0.0.1:8080/#/join/ws-1?t=ey.a.b");
        let parsed = parse(&link)?;
        assert_eq!(parsed.server_url, "http://127.0.0.1:8080");
        assert_eq!(
            (parsed.workspace.as_str(), parsed.token.as_str()),
            ("ws-1", "ey.a.b")
        );
        assert_eq!(parsed.key, None);
        let keyed = format("http://host", "ws-1", "ey.a.b", Some("k-_1"));
        assert_eq!(keyed, "http://host/#/join/ws-1?t=ey.a.b&k=k-_1");
        let parsed = parse(&keyed)?;
        assert_eq!(parsed.token, "ey.a.b");
        assert_eq!(parsed.key.as_deref(), Some("k-_1"));
        assert_eq!(key_of("#/join/ws?t=x&k="), None);
        Ok(())
    }

    #[test]
    fn texts_that_are_not_links_are_refused() {
        for text in [
            "",
            "hello",
            "http://h/#/join/ws",
            "http://h/#/join/?t=x",
            "http://h/#/join/ws?t=",
            "ftp://host/#/join/ws?t=x",
            "/#/join/ws?t=x",
        ] {
            assert_eq!(parse(text), Err(NotALink), "{text:?}");
        }
    }
}
