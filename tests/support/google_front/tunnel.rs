//! A plain CONNECT proxy in front of the front: `CONNECT *.googleapis.com:443` is tunnelled
//! to it byte for byte (TLS end to end, so the client sees the front's certificate for the
//! real host name, as through Airlock); any other target is refused with 403. It lets real
//! clients (gcloud, requests, gRPC C-core) reach the front by their proxy settings alone.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub async fn start(front: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tunnel");
    let addr = listener.local_addr().expect("tunnel addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(tunnel(stream, front));
        }
    });
    (addr, task)
}

async fn tunnel(mut client: TcpStream, front: SocketAddr) {
    // The head, byte by byte: what follows it (the TLS handshake) is the tunnel's.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match client.read(&mut byte).await {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("CONNECT "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let allowed = target
        .strip_suffix(":443")
        .is_some_and(|host| host == "googleapis.com" || host.ends_with(".googleapis.com"));
    if !allowed {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(front).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
