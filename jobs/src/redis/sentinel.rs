//! `Sentinels`: asking Redis Sentinel which node is the primary now.
//!
//! Each sentinel is asked in the configured order (`SENTINEL get-master-addr-by-name`),
//! on a connection opened for the question: lookups are rare (at start and after a
//! failure), and a connection kept between them would mostly be found dead. A sentinel
//! may still name the old primary for a moment after a failover, or name one that is
//! down, so the node it names must answer `ROLE` as a primary before it is used; if it
//! does not, the next sentinel is asked.

use std::fmt;

use ::redis::aio::ConnectionManager;
use ::redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, Role,
};
use config::{SentinelAddress, SentinelsConfig};

use super::primary::{Primary, Settings};
use super::{is_transient, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// The sentinels of one primary, and how to reach them and the nodes they name.
pub(super) struct Sentinels {
    nodes: Vec<SentinelAddress>,
    master_name: String,
    /// AUTH for the sentinels (`sentinel_password`).
    sentinel_login: RedisConnectionInfo,
    /// AUTH and database for the Redis nodes (`password`, `db`).
    node_login: RedisConnectionInfo,
}

/// What a lookup found.
pub(super) enum Found {
    /// The primary already known, at the same address, still a primary.
    Same,
    /// Another node: connections to it, the first one open and checked.
    New(Box<NewPrimary>),
}

pub(super) struct NewPrimary {
    pub(super) client: Client,
    pub(super) shared: ConnectionManager,
    pub(super) acked: ConnectionManager,
    pub(super) address: String,
}

impl Sentinels {
    pub(super) fn new(config: &SentinelsConfig) -> Self {
        let mut sentinel_login = RedisConnectionInfo::default();
        if let Some(password) = &config.sentinel_password {
            sentinel_login = sentinel_login.set_password(password.expose());
        }
        let mut node_login = RedisConnectionInfo::default().set_db(config.db);
        if let Some(password) = &config.password {
            node_login = node_login.set_password(password.expose());
        }
        Sentinels {
            nodes: config.sentinels.clone(),
            master_name: config.master_name.clone(),
            sentinel_login,
            node_login,
        }
    }

    /// The primary the sentinels name now, checked with `ROLE`. `known` is the primary in
    /// use: if it is named again, its connections are kept.
    ///
    /// The error is of the connection class (tried again by the retry helper) unless
    /// nothing that failed could come right by waiting: every sentinel that answered
    /// knows no primary by that name, or a password was refused.
    pub(super) async fn find(
        &self,
        known: Option<&Primary>,
        settings: &Settings,
    ) -> RedisResult<Found> {
        let mut problems = Vec::new();
        let mut tried: Vec<String> = Vec::new();
        let mut worth_waiting = false;
        for sentinel in &self.nodes {
            let (host, port) = match self.ask(sentinel).await {
                Ok(Some(named)) => named,
                Ok(None) => {
                    problems.push(format!(
                        "sentinel {sentinel} monitors no primary named \"{}\"",
                        self.master_name
                    ));
                    continue;
                }
                Err(err) => {
                    worth_waiting |= is_transient(&err);
                    problems.push(format!("sentinel {sentinel} {}: {err}", failed(&err)));
                    continue;
                }
            };
            let address = address(&host, port);
            if tried.contains(&address) {
                continue;
            }
            tried.push(address.clone());
            let checked = match known.filter(|k| k.address == address) {
                Some(known) => is_primary(&mut known.shared.clone())
                    .await
                    .map(|primary| primary.then_some(Found::Same)),
                None => self.open(&host, port, address.clone(), settings).await,
            };
            match checked {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {
                    // Promoted in a moment, or a stale answer: either way, not yet.
                    worth_waiting = true;
                    problems.push(format!(
                        "sentinel {sentinel} names {address}, which answers as a replica"
                    ));
                }
                Err(err) => {
                    worth_waiting |= is_transient(&err);
                    problems.push(format!(
                        "sentinel {sentinel} names {address}, which {}: {err}",
                        failed(&err)
                    ));
                }
            }
        }
        let detail = problems.join("; ");
        Err(match worth_waiting {
            true => RedisError::from((
                ErrorKind::Io,
                "no sentinel names a primary that answers",
                detail,
            )),
            false => RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no primary can be used through the sentinels",
                detail,
            )),
        })
    }

    /// `SENTINEL get-master-addr-by-name`: the address `sentinel` holds for the primary,
    /// `None` if it monitors none by that name.
    async fn ask(&self, sentinel: &SentinelAddress) -> RedisResult<Option<(String, u16)>> {
        let info = ConnectionAddr::Tcp(sentinel.host.clone(), sentinel.port)
            .into_connection_info()?
            .set_redis_settings(self.sentinel_login.clone());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut con = Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        ::redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master_name)
            .query_async(&mut con)
            .await
    }

    /// Connections to the node at `host:port`, if it answers as a primary.
    async fn open(
        &self,
        host: &str,
        port: u16,
        address: String,
        settings: &Settings,
    ) -> RedisResult<Option<Found>> {
        let info = ConnectionAddr::Tcp(host.to_string(), port)
            .into_connection_info()?
            .set_redis_settings(self.node_login.clone());
        let client = Client::open(info)?;
        let mut shared =
            ConnectionManager::new_with_config(client.clone(), settings.shared.clone()).await?;
        if !is_primary(&mut shared).await? {
            return Ok(None);
        }
        let acked = settings.acked_beside(&client, shared.clone())?;
        Ok(Some(Found::New(Box::new(NewPrimary {
            client,
            shared,
            acked,
            address,
        }))))
    }
}

/// How a server failed us, for a sentence: it is down or slow, or it said no.
fn failed(err: &RedisError) -> &'static str {
    match is_transient(err) {
        true => "does not answer",
        false => "refused us",
    }
}

/// `ROLE` says primary.
async fn is_primary(con: &mut ConnectionManager) -> RedisResult<bool> {
    let role: Role = ::redis::cmd("ROLE").query_async(con).await?;
    Ok(matches!(role, Role::Primary { .. }))
}

/// `host:port`, with brackets around an IPv6 address.
fn address(host: &str, port: u16) -> String {
    SentinelAddress {
        host: host.to_string(),
        port,
    }
    .to_string()
}

/// The primary as logs and errors name it: `primary "octobox" of sentinels a:1, b:2`.
impl fmt::Display for Sentinels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "primary \"{}\" of sentinels ", self.master_name)?;
        for (i, sentinel) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{sentinel}")?;
        }
        Ok(())
    }
}
