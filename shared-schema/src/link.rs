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
}

/// A text that is not a share link.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("this is not a Hearth share link: it looks like https://HOST/#/join/NOTEBOOK?t=TOKEN")]
pub struct NotALink;

/// The link for `workspace` and `token` on the server at `server_url`.
pub fn format(server_url: &str, workspace: &str, token: &str) -> String {
    format!(
        "{}/#/join/{workspace}?t={token}",
        server_url.trim_end_matches('/')
    )
}

/// Reads a whole link.
pub fn parse(link: &str) -> Result<ShareLink, NotALink> {
    let (server, fragment) = link.trim().split_once("/#").ok_or(NotALink)?;
    let server = server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) || server.len() < 9 {
        return Err(NotALink);
    }
    let (workspace, token) = parse_fragment(&format!("#{fragment}")).ok_or(NotALink)?;
    Ok(ShareLink {
        server_url: server.to_owned(),
        workspace,
        token,
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
        let link = format("http://127.0.0.1:8080/", "ws-1", "ey.a.b");
        assert_eq!(link, "http://127.0.0.1:8080/#/join/ws-1?t=ey.a.b");
        let parsed = parse(&link)?;
        assert_eq!(parsed.server_url, "http://127.0.0.1:8080");
        assert_eq!(
            (parsed.workspace.as_str(), parsed.token.as_str()),
            ("ws-1", "ey.a.b")
        );
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
