//! The private service instances tests rely on start, answer, and survive a restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use octobox_tests::services::{RabbitMq, Redis};

fn redis_command(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(command.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[test]
fn a_private_redis_keeps_its_data_across_a_restart() {
    let mut redis = Redis::start();
    assert_eq!(redis_command(redis.port, "SET k v\r\n"), "+OK\r\n");
    redis.restart(Duration::from_millis(100));
    assert_eq!(redis_command(redis.port, "GET k\r\n"), "$1\r\nv\r\n");
}

#[test]
fn a_private_rabbitmq_node_speaks_amqp() {
    let mq = RabbitMq::start();
    let mut s = TcpStream::connect(("127.0.0.1", mq.port)).expect("RabbitMQ listens");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
    let mut frame = [0u8; 7];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(
        frame[0], 1,
        "the broker opens with a method frame (connection.start)"
    );
}
