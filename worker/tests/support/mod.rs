//! Local servers the day-one task tests talk to: DNS, WHOIS, HTTP(S).

pub mod dns_server;
pub mod web_server;
pub mod whois_server;
