//! TCP targets on 127.0.0.1 for the lab's policies: an echo, a port that refuses, and one that
//! never answers.

use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A TCP listener whose accept queue is full, so connections to it are never answered.
#[derive(Debug)]
pub struct Silent {
    /// `127.0.0.1:PORT` of the listener.
    pub addr: String,
    _listener: TcpListener,
    _filling: Vec<TcpStream>,
}

/// A TCP echo server on 127.0.0.1, served by the test's runtime.
pub async fn spawn_echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A 127.0.0.1 port that was just free: connections to it are refused.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A listener with the shortest backlog that never accepts, its queue already full: the kernel
/// drops further connection attempts, so they time out.
pub async fn silent_port() -> Silent {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    if let Ok(Ok(tcp)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
        filling.push(tcp);
    }
    Silent {
        addr: addr.to_string(),
        _listener: listener,
        _filling: filling,
    }
}
