//! A TCP proxy in front of a real service, which a test can take down and bring back: the way to
//! show what the service does while a dependency is unreachable, and that it recovers on its own,
//! without stopping the machine's PostgreSQL or Redis.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

pub struct ToggleProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: Option<JoinHandle<()>>,
}

impl ToggleProxy {
    /// Starts forwarding a free local port to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let target: SocketAddr = tokio::net::lookup_host(target).await.expect("target").next().expect("target address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (generation, _) = watch::channel(0);
        let mut proxy = Self { addr, target, up: Arc::new(AtomicBool::new(true)), generation, task: None };
        proxy.task = Some(proxy.serve(listener));
        proxy
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target;
        let up = self.up.clone();
        let generation = self.generation.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if !up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        })
    }

    /// The dependency becomes unreachable: open connections are cut and new ones closed at once.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// The dependency is back.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    pub fn url(&self, scheme_and_user: &str, path: &str) -> String {
        format!("{scheme_and_user}{}{path}", self.addr)
    }
}

impl Drop for ToggleProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A port that accepts connections and never answers: a dependency that hangs.
pub struct Blackhole {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Blackhole {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { addr, task }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
