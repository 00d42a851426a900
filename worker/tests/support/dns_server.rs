//! A DNS server for tests and the `dns` benchmark: UDP on 127.0.0.1, answering from a
//! table of records (NXDOMAIN for any other name), or always SERVFAIL, or never.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What the server does with every question.
#[derive(Clone)]
pub enum Behaviour {
    /// Answers from its records; NXDOMAIN for a name it has none of, an empty answer
    /// for a name it has records of, but not of the type asked.
    Records(Vec<Record>),
    /// SERVFAIL, whatever the question.
    ServFail,
    /// Reads the question and never answers.
    Silent,
}

/// A running server; it stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    /// Questions received so far.
    pub asked: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An A record.
pub fn a(name: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        ttl,
        RData::A(ip.parse::<std::net::Ipv4Addr>().unwrap().into()),
    )
}

impl DnsServer {
    pub async fn start(behaviour: Behaviour) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = asked.clone();
        let mut by_name: HashMap<Name, Vec<Record>> = HashMap::new();
        if let Behaviour::Records(records) = &behaviour {
            for r in records {
                by_name
                    .entry(r.name.to_lowercase())
                    .or_default()
                    .push(r.clone());
            }
        }
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(question) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut answer = Message::response(question.metadata.id, question.metadata.op_code);
                answer.metadata.message_type = MessageType::Response;
                answer.metadata.recursion_desired = question.metadata.recursion_desired;
                answer.metadata.recursion_available = true;
                answer.queries = question.queries.clone();
                match &behaviour {
                    Behaviour::Silent => continue,
                    Behaviour::ServFail => answer.metadata.response_code = ResponseCode::ServFail,
                    Behaviour::Records(_) => {
                        let Some(q) = question.queries.first() else {
                            continue;
                        };
                        match by_name.get(&q.name().to_lowercase()) {
                            None => answer.metadata.response_code = ResponseCode::NXDomain,
                            Some(records) => {
                                answer.answers = records
                                    .iter()
                                    .filter(|r| {
                                        q.query_type() == RecordType::ANY
                                            || r.record_type() == q.query_type()
                                    })
                                    .cloned()
                                    .collect();
                            }
                        }
                    }
                }
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        DnsServer { addr, asked, task }
    }
}
