//! Which of a profile's gateways a person uses: a stable order per person by rendezvous
//! (highest-random-weight) hashing, so people spread evenly over the gateways, each keeps the
//! same first choice from run to run, and removing a gateway moves only the people on it.

use rampart_core::username::normalize_username;
use ring::digest::{SHA256, digest};

/// Separates these hashes from any other use of SHA-256 over the same text.
const DOMAIN: &[u8] = b"rampart-connect gateway choice v1\0";

/// `gateways` in `user`'s order of preference: by descending weight SHA-256(user, gateway),
/// ties (none in practice) in the profile's order. The order does not depend on the
/// profile's, and duplicates are dropped. `user` is normalised as the gateway does, so
/// `Alice` and `alice` choose alike.
pub fn order(user: &str, gateways: &[String]) -> Vec<String> {
    let user = normalize_username(user).unwrap_or_else(|_| user.to_owned());
    let mut weighted: Vec<(u64, usize, &String)> = Vec::with_capacity(gateways.len());
    for (position, gateway) in gateways.iter().enumerate() {
        if !weighted.iter().any(|(_, _, g)| *g == gateway) {
            weighted.push((weight(&user, gateway), position, gateway));
        }
    }
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    weighted.into_iter().map(|(_, _, g)| g.clone()).collect()
}

/// `first` (a gateway named on the command line, or the one holding the session), then the
/// other `gateways` in `user`'s order.
pub fn starting_with(first: Option<&str>, user: &str, gateways: &[String]) -> Vec<String> {
    let rest: Vec<String> = gateways.iter().filter(|g| Some(g.as_str()) != first).cloned().collect();
    first.map(str::to_owned).into_iter().chain(order(user, &rest)).collect()
}

/// The rendezvous weight of `gateway` for the normalised `user`: the first 8 bytes of
/// SHA-256 over the domain, the user's length and bytes, and the gateway's address.
fn weight(user: &str, gateway: &str) -> u64 {
    let mut input = Vec::with_capacity(DOMAIN.len() + 8 + user.len() + gateway.len());
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(&(user.len() as u64).to_be_bytes());
    input.extend_from_slice(user.as_bytes());
    input.extend_from_slice(gateway.as_bytes());
    let hash = digest(&SHA256, &input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gateways(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("gw{i}.bank.example:4433")).collect()
    }

    fn people() -> impl Iterator<Item = String> {
        (0..1000).map(|i| format!("person{i:04}"))
    }

    /// How many of the 1000 people choose each gateway first.
    fn shares(gateways: &[String]) -> Vec<usize> {
        let mut counts = vec![0; gateways.len()];
        for person in people() {
            let first = &order(&person, gateways)[0];
            counts[gateways.iter().position(|g| g == first).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn the_choice_is_stable_and_ignores_the_profiles_order_and_spelling() {
        let list = gateways(4);
        let alice = order("alice", &list);
        assert_eq!(alice.len(), 4);
        for _ in 0..3 {
            assert_eq!(order("alice", &list), alice);
        }
        let mut reversed = list.clone();
        reversed.reverse();
        assert_eq!(order("alice", &reversed), alice);
        assert_eq!(order(" Alice ", &list), alice);
        // Pinned: a new version must not move everyone to another gateway.
        assert_eq!(weight("alice", "gw1.bank.example:4433"), PINNED_ALICE_GW1);
    }

    /// SHA-256 computed independently (Python hashlib) over the same bytes.
    const PINNED_ALICE_GW1: u64 = 13_360_593_500_613_748_658;

    #[test]
    fn people_spread_evenly_over_two_and_four_gateways() {
        let two = shares(&gateways(2));
        for count in &two {
            assert!((350..=650).contains(count), "{two:?}");
        }
        let four = shares(&gateways(4));
        for count in &four {
            assert!((150..=350).contains(count), "{four:?}");
        }
        // Not everyone on one gateway's heels either: second choices spread too.
        let list = gateways(4);
        let seconds = people().filter(|p| order(p, &list)[1] == list[0]).count();
        assert!((150..=350).contains(&seconds), "{seconds}");
    }

    #[test]
    fn removing_a_gateway_moves_only_its_people() {
        let all = gateways(4);
        let without: Vec<String> = all.iter().filter(|g| **g != all[2]).cloned().collect();
        let mut moved = 0;
        for person in people() {
            let before = order(&person, &all);
            let after = order(&person, &without);
            let expected: Vec<String> = before.iter().filter(|g| **g != all[2]).cloned().collect();
            assert_eq!(after, expected, "{person}: the others keep their order");
            if before[0] == all[2] {
                moved += 1;
                assert_eq!(after[0], before[1], "{person} moves to their second choice");
            } else {
                assert_eq!(after[0], before[0], "{person} stays");
            }
        }
        assert!((150..=350).contains(&moved), "{moved}");
    }

    #[test]
    fn one_gateway_duplicates_and_an_explicit_first() {
        let one = gateways(1);
        assert_eq!(order("alice", &one), one);
        assert!(order("alice", &[]).is_empty());
        let twice = vec![one[0].clone(), one[0].clone()];
        assert_eq!(order("alice", &twice), one);
        let list = gateways(3);
        let chosen = order("alice", &list);
        let explicit = starting_with(Some(&chosen[2]), "alice", &list);
        assert_eq!(explicit, vec![chosen[2].clone(), chosen[0].clone(), chosen[1].clone()]);
        let elsewhere = starting_with(Some("other:4433"), "alice", &list);
        assert_eq!(elsewhere[0], "other:4433");
        assert_eq!(&elsewhere[1..], chosen.as_slice());
        assert_eq!(starting_with(None, "alice", &list), chosen);
    }
}
