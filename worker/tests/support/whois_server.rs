//! A WHOIS server (RFC 3912) for tests: on 127.0.0.1, it reads one query line, answers
//! with the text its function gives, and closes; or it reads and never answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct WhoisServer {
    pub addr: SocketAddr,
    /// Every query line received, as sent (CRLF included).
    pub queries: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WhoisServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WhoisServer {
    /// Answers each query with `answer(query)`; `None` never answers.
    pub async fn start(answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.is_err() {
                        return;
                    }
                    seen.lock().unwrap().push(line.clone());
                    match answer(line.trim_end()) {
                        Some(text) => {
                            let _ = stream.get_mut().write_all(text.as_bytes()).await;
                            let _ = stream.get_mut().shutdown().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        WhoisServer {
            addr,
            queries,
            task,
        }
    }
}
