//! Connection workers: one thread per worker, each running a single-threaded tokio runtime, the
//! way nginx runs worker processes. The accept loop hands every new connection to the next worker
//! in turn; from then on the connection, the pipeline of each of its requests and the upstream
//! connections it uses ([`super::forward`] keeps one pool per thread) all run on that one thread.
//!
//! A work-stealing runtime moved the tasks of one request (the client connection, the pipeline,
//! the pooled upstream connection) between its worker threads, and each hop was a cross-thread
//! wake-up (futex, and an inter-processor interrupt when the other thread slept): with two
//! workers the proxy spent about 70% more CPU per request than with one (see
//! docs/benchmarks.md, "Proxy throughput").
//!
//! The number of workers is `TOKIO_WORKER_THREADS` when set, else one per CPU.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The workers; dropping it stops them once their queues are drained (their tasks are dropped).
pub struct Workers {
    senders: Vec<UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        let mut senders = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (sender, mut receiver) = unbounded_channel::<Job>();
            std::thread::Builder::new()
                .name(format!("authz-proxy-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(job) = receiver.recv().await {
                            tokio::spawn(job());
                        }
                    });
                })?;
            senders.push(sender);
        }
        Ok(Workers {
            senders,
            next: AtomicUsize::new(0),
        })
    }

    /// `TOKIO_WORKER_THREADS` when it is a positive number, else the number of CPUs.
    pub fn default_count() -> usize {
        std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|&count| count > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs the future that `make` builds on the next worker. `make` runs on the worker's thread,
    /// so that sockets it registers (`TcpStream::from_std`) belong to that worker's reactor.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len().max(1);
        let Some(sender) = self.senders.get(index) else {
            return;
        };
        if sender.send(Box::new(move || Box::pin(make()))).is_err() {
            tracing::error!(worker = index, "a proxy worker stopped; connection dropped");
        }
    }
}
