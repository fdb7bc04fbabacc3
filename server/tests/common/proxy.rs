//! A TCP proxy that loses replies: requests reach the server whole, but the first `drop`
//! connections are cut as soon as the server starts answering — the server committed, the
//! client never hears (a reply lost on the way back).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy: its base URL and how many replies it swallowed so far.
pub struct LossyProxy {
    pub url: String,
    pub dropped: Arc<AtomicUsize>,
}

/// Starts a proxy in front of `target` (`http://host:port`) that swallows the replies of its
/// first `drop` connections.
pub async fn reply_losing_proxy(target: &str, drop: usize) -> Result<LossyProxy, super::E> {
    let upstream_addr = target.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let dropped = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let lose = accepted.fetch_add(1, Ordering::SeqCst) < drop;
            let (addr, counter) = (upstream_addr.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(&addr).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut uw).await });
                if lose {
                    // Wait for the first byte of the reply, then cut both sides.
                    let mut byte = [0u8; 1];
                    if matches!(ur.read(&mut byte).await, Ok(n) if n > 0) {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    up.abort();
                    let _ = cw.shutdown().await;
                    return;
                }
                let _ = tokio::io::copy(&mut ur, &mut cw).await;
                up.abort();
            });
        }
    });
    Ok(LossyProxy { url, dropped })
}
