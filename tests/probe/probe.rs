//! `probe`: the program inside the test images. Built statically (no libraries, so the
//! image is `FROM scratch` plus this file) by `octobox_tests::containers`; each first
//! argument is one behaviour a test needs from a containerized task.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A 1×1 PNG, base64-encoded, as Octobox's containers write images.
const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args[1.min(args.len())..];
    let number = |i: usize| rest.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    match args.first().map(String::as_str) {
        // Each argument on a line of its own, in brackets: shows where arguments split.
        Some("args") => {
            for a in rest {
                println!("[{a}]");
            }
        }
        Some("env") => println!("{}", std::env::var(&rest[0]).unwrap_or_default()),
        // Each argument as given, on stderr (progress) and stdout, and reversed on
        // stdout: the reversed form shows the program got the text itself.
        Some("reveal") => {
            for a in rest {
                eprintln!("using {a}");
                println!("as given: {a}");
                println!("reversed: {}", a.chars().rev().collect::<String>());
            }
        }
        Some("png") => println!("{PNG_BASE64}"),
        Some("fail") => {
            eprintln!("step 1 of 2: reading the input");
            eprintln!("step 2 of 2: the input is not a report");
            std::process::exit(number(0) as i32);
        }
        Some("sleep") => {
            eprintln!("sleeping {}s", number(0));
            std::thread::sleep(Duration::from_secs(number(0)));
            println!("woke up");
        }
        // Closes its output, then goes on running.
        Some("vanish") => {
            use std::os::fd::FromRawFd;
            // SAFETY: nothing else in this program uses stdout or stderr afterwards.
            drop(unsafe { std::fs::File::from_raw_fd(1) });
            drop(unsafe { std::fs::File::from_raw_fd(2) });
            std::thread::sleep(Duration::from_secs(number(0)));
        }
        // N MiB on stderr without a newline, then a last line: a task that never ends
        // its progress line.
        Some("flood") => {
            let chunk = vec![b'x'; 1 << 20];
            let mut err = std::io::stderr().lock();
            for _ in 0..number(0) {
                let _ = err.write_all(&chunk);
            }
            let _ = err.write_all(b"\nlast words\n");
            println!("flooded");
        }
        Some("progress") => {
            for i in 1..=number(0) {
                eprintln!("step {i}");
                std::thread::sleep(Duration::from_millis(number(1)));
            }
            println!("done");
        }
        // Connects to port N of the default gateway (the Docker host on a bridge network).
        Some("connect") => match gateway() {
            None => println!("no network: no route out of the container"),
            Some(ip) => {
                let to = SocketAddr::from((ip, number(0) as u16));
                match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                    Ok(_) => println!("connected to {to}"),
                    Err(e) => println!("no network: {e}"),
                }
            }
        },
        Some("alloc") => {
            let mib = number(0) as usize;
            let mut v: Vec<u8> = Vec::with_capacity(mib << 20);
            for _ in 0..(mib << 20) / 4096 {
                v.extend_from_slice(&[1u8; 4096]);
            }
            println!("allocated {} MiB", v.len() >> 20);
        }
        Some("spew") => {
            let out = vec![b'x'; number(0) as usize];
            std::io::stdout().write_all(&out).unwrap();
        }
        Some("identity") => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("Uid: ?");
            let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap_or("CapEff: ?");
            let bounding = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap_or("CapBnd: ?");
            let write = match std::fs::write("/probe-was-here", b"x") {
                Ok(()) => "root writable".to_string(),
                Err(e) => format!("root not writable: {e}"),
            };
            let tmp = match std::fs::write("/tmp/probe-was-here", b"x") {
                Ok(()) => "tmp writable",
                Err(_) => "tmp not writable",
            };
            println!("{}", uid.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
            println!("{}", caps.split_whitespace().collect::<Vec<_>>().join(" "));
            println!("{}", bounding.split_whitespace().collect::<Vec<_>>().join(" "));
            println!("{write}");
            println!("{tmp}");
        }
        Some("noop") | None => {}
        Some(other) => {
            eprintln!("probe: no behaviour \"{other}\"");
            std::process::exit(2);
        }
    }
}

/// The default route's gateway, from the kernel's routing table.
fn gateway() -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<_> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"00000000") {
            return None;
        }
        let hex = u32::from_str_radix(fields.get(2)?, 16).ok()?;
        Some(Ipv4Addr::from(hex.swap_bytes()))
    })
}
