//! What the sessions' `source_ips` say about packets mirrored at both of their ends: which
//! addresses each session mirrors, which sessions may mirror the peers of another, and so where
//! de-duplication has work to do. `broker check` lists it and [`crate::validate`] warns from it.
//!
//! # Design
//! A packet between two mirrored interfaces arrives twice: once from the session that mirrors
//! its sender, once from the session that mirrors its receiver. The config cannot know which
//! hosts talk to which, so two sessions *may* be peers when each lists an address of one family
//! (an IPv4-only session never sees an IPv6 packet of another's). The same address listed by two
//! sessions is one interface mirrored twice: each of its packets arrives once per session.
//!
//! # Limitations
//! A session listing two addresses of one family may be one interface with two addresses (whose
//! packets to each other never leave the host) or two interfaces under one VNI (whose packets to
//! each other arrive twice under that one session): the config does not say which, so the
//! warnings say "if".

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{Session, SessionId};

/// The mirrored addresses of a config's sessions.
pub(crate) struct Mirrored<'a> {
    sessions: &'a [Session],
    /// Each address of a `source_ips` list, with the sessions that list it, in session order.
    by_address: BTreeMap<IpAddr, Vec<SessionId>>,
}

impl<'a> Mirrored<'a> {
    pub(crate) fn new(sessions: &'a [Session]) -> Mirrored<'a> {
        let mut by_address: BTreeMap<IpAddr, Vec<SessionId>> = BTreeMap::new();
        for (position, session) in sessions.iter().enumerate() {
            let id = SessionId(u16::try_from(position).unwrap_or(u16::MAX));
            for address in &session.source_ips {
                by_address.entry(*address).or_default().push(id);
            }
        }
        Mirrored {
            sessions,
            by_address,
        }
    }

    /// Addresses listed by two sessions or more, with those sessions.
    pub(crate) fn shared(&self) -> impl Iterator<Item = (IpAddr, &[SessionId])> {
        self.by_address
            .iter()
            .filter(|(_, sessions)| sessions.len() > 1)
            .map(|(address, sessions)| (*address, sessions.as_slice()))
    }

    /// The other sessions with an address of a family `session` has one of: those that may
    /// mirror the other end of its packets.
    pub(crate) fn peers(&self, session: SessionId) -> Vec<SessionId> {
        let Some(own) = self.sessions.get(session.index()) else {
            return Vec::new();
        };
        let (v4, v6) = families(&own.source_ips);
        self.sessions
            .iter()
            .enumerate()
            .filter(|&(position, other)| {
                let (other_v4, other_v6) = families(&other.source_ips);
                position != session.index() && ((v4 && other_v4) || (v6 && other_v6))
            })
            .map(|(position, _)| SessionId(u16::try_from(position).unwrap_or(u16::MAX)))
            .collect()
    }

    /// Whether some of `sessions` (together) mirror two distinct addresses of one family: then a
    /// packet between two of them may arrive twice.
    pub(crate) fn both_ends_among(&self, sessions: impl IntoIterator<Item = SessionId>) -> bool {
        let (mut v4, mut v6) = (None, None);
        for id in sessions {
            let Some(session) = self.sessions.get(id.index()) else {
                continue;
            };
            for &address in &session.source_ips {
                let seen = if address.is_ipv4() { &mut v4 } else { &mut v6 };
                match seen {
                    Some(first) if *first != address => return true,
                    Some(_) => {}
                    None => *seen = Some(address),
                }
            }
        }
        false
    }
}

/// Whether `session` lists two addresses of one family (see the module's *Limitations*).
pub(crate) fn lists_two_of_a_family(session: &Session) -> bool {
    let v4 = session.source_ips.iter().filter(|a| a.is_ipv4()).count();
    v4 > 1 || session.source_ips.len() - v4 > 1
}

/// Whether `addresses` hold an IPv4 address, and an IPv6 one.
fn families(addresses: &[IpAddr]) -> (bool, bool) {
    (
        addresses.iter().any(IpAddr::is_ipv4),
        addresses.iter().any(IpAddr::is_ipv6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Vni;

    fn session(name: &str, addresses: &[&str]) -> Session {
        Session {
            name: name.to_owned(),
            vni: Vni::new(1),
            filter: None,
            tools: Vec::new(),
            source_ips: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn peers_share_a_family_and_shared_addresses_are_found() {
        let sessions = [
            session("a", &["10.0.0.1"]),
            session("b", &["10.0.0.2", "fd00::2"]),
            session("c", &["fd00::3"]),
            session("d", &[]),
            session("e", &["10.0.0.1"]),
        ];
        let mirrored = Mirrored::new(&sessions);
        let ids = |list: &[u16]| list.iter().map(|&i| SessionId(i)).collect::<Vec<_>>();
        assert_eq!(mirrored.peers(SessionId(0)), ids(&[1, 4]));
        assert_eq!(mirrored.peers(SessionId(1)), ids(&[0, 2, 4]));
        assert_eq!(mirrored.peers(SessionId(2)), ids(&[1]));
        assert_eq!(mirrored.peers(SessionId(3)), ids(&[]));
        let shared: Vec<_> = mirrored.shared().collect();
        assert_eq!(
            shared,
            vec![("10.0.0.1".parse().unwrap(), &ids(&[0, 4])[..])]
        );
    }

    #[test]
    fn both_ends_need_two_distinct_addresses_of_one_family() {
        let sessions = [
            session("a", &["10.0.0.1"]),
            session("b", &["fd00::2"]),
            session("c", &["10.0.0.1"]),
            session("d", &["10.0.0.4", "10.0.0.5"]),
        ];
        let mirrored = Mirrored::new(&sessions);
        let among = |list: &[u16]| mirrored.both_ends_among(list.iter().map(|&i| SessionId(i)));
        assert!(!among(&[0, 1]), "one address per family");
        assert!(!among(&[0, 2]), "one address, mirrored twice");
        assert!(among(&[0, 3]));
        assert!(among(&[3]), "one session listing two");
        assert!(!lists_two_of_a_family(&sessions[0]));
        assert!(lists_two_of_a_family(&sessions[3]));
        assert!(!lists_two_of_a_family(&session(
            "dual",
            &["10.0.0.1", "fd00::1"]
        )));
    }
}
