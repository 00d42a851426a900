//! Local servers the day-one task tests talk to: DNS, WHOIS, HTTP(S).
//!
//! Each test file (`day_one.rs`, `walk_site.rs`) is its own crate and uses a part of
//! them: what one leaves unused is not dead.
#![allow(dead_code)]

pub mod dns_server;
pub mod web_server;
pub mod whois_server;
