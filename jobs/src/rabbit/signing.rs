//! Signing: every job and control message an Octobox process publishes carries
//! `x-octobox-signature`, the hex HMAC-SHA256 of its body under `[broker] signing_key`.
//!
//! Why: RabbitMQ's credentials are shared by every process and often by operators; without
//! a signature, anyone holding them could publish a job to `octobox.jobs` (or a `cancel`
//! to `octobox.control`) and a worker would obey. With a key configured, a job stream
//! hands a worker only messages whose signature checks under the current key or, during
//! a rotation, the previous one; the others are set aside in the dead letters
//! ([`super::consume`]) and forged control messages are dropped ([`super::control`]).
//!
//! The MAC covers the body only: a signed message copied off the wire can be published
//! again (a replay of a job that was already asked for), which the workers' "never rerun a
//! finished job" rule and the job id bound.
//!
//! Keys never reach a log: this type has no `Debug` that would show them.

use std::fmt;

use hmac::{Hmac, Mac};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use sha2::Sha256;

use crate::failure::BadSignature;
use config::BrokerConfig;

/// The header that carries a message's signature.
pub const SIGNATURE_HEADER: &str = "x-octobox-signature";

type HmacSha256 = Hmac<Sha256>;

/// The keys of one broker: signs with the current one, accepts either.
pub(crate) struct Signing {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signing(***)")
    }
}

impl Signing {
    /// The keys of `config`; `None` when it has no `signing_key` (messages are then
    /// neither signed nor checked).
    pub(crate) fn from_config(config: &BrokerConfig) -> Option<Signing> {
        let current = config.signing_key.as_ref()?.expose().as_bytes().to_vec();
        let previous = config
            .previous_signing_key
            .as_ref()
            .map(|k| k.expose().as_bytes().to_vec());
        Some(Signing { current, previous })
    }

    fn mac(key: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
    }

    /// The hex HMAC-SHA256 of `body` under the current key.
    pub(crate) fn sign(&self, body: &[u8]) -> String {
        let mut mac = Self::mac(&self.current);
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// `properties` with the signature of `body` added to its headers.
    pub(crate) fn signed(&self, properties: BasicProperties, body: &[u8]) -> BasicProperties {
        let mut headers = properties.headers().clone().unwrap_or_default();
        headers.insert(
            SIGNATURE_HEADER.into(),
            AMQPValue::LongString(LongString::from(self.sign(body))),
        );
        properties.with_headers(headers)
    }

    /// Checks the signature in `headers` against `body`, under the current key, then the
    /// previous one. Compared in constant time (`verify_slice`), so a forger learns
    /// nothing from how long a refusal takes.
    pub(crate) fn verify(
        &self,
        headers: Option<&FieldTable>,
        body: &[u8],
    ) -> Result<(), BadSignature> {
        let value = headers
            .and_then(|h| h.inner().get(SIGNATURE_HEADER))
            .ok_or(BadSignature::Missing)?;
        let text = match value {
            AMQPValue::LongString(s) => s.as_bytes().to_vec(),
            AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
            _ => return Err(BadSignature::Malformed),
        };
        let signature = hex::decode(text).map_err(|_| BadSignature::Malformed)?;
        if signature.len() != 32 {
            return Err(BadSignature::Malformed);
        }
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        for key in keys {
            let mut mac = Self::mac(key);
            mac.update(body);
            if mac.verify_slice(&signature).is_ok() {
                return Ok(());
            }
        }
        Err(BadSignature::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Secret;

    fn signing(current: &str, previous: Option<&str>) -> Signing {
        let mut config = BrokerConfig::new(Secret::new("amqp://mq"));
        config.signing_key = Some(Secret::new(current));
        config.previous_signing_key = previous.map(Secret::new);
        Signing::from_config(&config).unwrap()
    }

    fn headers(signature: AMQPValue) -> FieldTable {
        let mut h = FieldTable::default();
        h.insert(SIGNATURE_HEADER.into(), signature);
        h
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not() {
        let s = signing(&"a".repeat(32), None);
        let props = s.signed(BasicProperties::default(), b"{\"job\":1}");
        let h = props.headers().as_ref();
        assert_eq!(s.verify(h, b"{\"job\":1}"), Ok(()));
        assert_eq!(s.verify(h, b"{\"job\":2}"), Err(BadSignature::Mismatch));
    }

    #[test]
    fn missing_malformed_and_foreign_signatures_are_told_apart() {
        let s = signing(&"a".repeat(32), None);
        assert_eq!(s.verify(None, b"x"), Err(BadSignature::Missing));
        let h = headers(AMQPValue::LongString("zz".into()));
        assert_eq!(s.verify(Some(&h), b"x"), Err(BadSignature::Malformed));
        let h = headers(AMQPValue::LongLongInt(3));
        assert_eq!(s.verify(Some(&h), b"x"), Err(BadSignature::Malformed));
        let other = signing(&"b".repeat(32), None);
        let h = headers(AMQPValue::LongString(other.sign(b"x").into()));
        assert_eq!(s.verify(Some(&h), b"x"), Err(BadSignature::Mismatch));
    }

    #[test]
    fn the_previous_key_verifies_but_never_signs() {
        let old = signing(&"o".repeat(32), None);
        let new = signing(&"n".repeat(32), Some(&"o".repeat(32)));
        let h = headers(AMQPValue::LongString(old.sign(b"x").into()));
        assert_eq!(new.verify(Some(&h), b"x"), Ok(()));
        assert_ne!(new.sign(b"x"), old.sign(b"x"));
        assert!(!format!("{new:?}").contains("nnnn"));
    }
}
