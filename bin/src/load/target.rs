//! The servers a load talks to (`--target`, repeatable) and which of them
//! each connection uses.
//!
//! Connections are dealt out to the targets in proportion to their weights
//! (`--weights`, default all 1: round-robin), interleaved the way smooth
//! weighted round-robin (nginx's) does, so connection *i* and *i+1* go to
//! different targets whenever the weights allow. Every connection carries
//! the same share of the offered rate, so a target's share of the requests
//! is its share of the connections: with `--weights 3,1` and 40
//! connections, 30 and 10.

use std::net::SocketAddr;
use std::time::Duration;

use torsion::client::Connector;

use super::io::{self, TlsClient};

/// One server of a load.
#[derive(Debug, Clone)]
pub struct LoadTarget {
    /// Where to connect.
    pub addr: SocketAddr,
    /// As the user wrote it (a URL, `host:port`): the report's row name.
    pub label: String,
    /// TLS over the connection (`https://`, `--tls`).
    pub tls: Option<TlsClient>,
    /// Its share of the connections, relative to the other targets'.
    pub weight: u32,
}

impl LoadTarget {
    /// A plain TCP target of weight 1, labelled by its address.
    pub fn plain(addr: SocketAddr) -> LoadTarget {
        LoadTarget {
            addr,
            label: addr.to_string(),
            tls: None,
            weight: 1,
        }
    }

    /// The connector of a load connection to it.
    pub fn connector(&self, timeout: Duration) -> Connector {
        io::connector(self.addr, timeout, self.tls.as_ref())
    }
}

/// Gives each target its weight from `--weights W1,W2,…` (one per target,
/// each at least 1); all 1 when absent.
pub fn apply_weights(targets: &mut [LoadTarget], weights: Option<&str>) -> Result<(), String> {
    let Some(text) = weights else {
        return Ok(());
    };
    let parsed: Vec<u32> = text
        .split(',')
        .map(|w| match w.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "invalid --weights entry \"{w}\" (expected whole numbers ≥ 1, e.g. 3,1)"
            )),
        })
        .collect::<Result<_, _>>()?;
    if parsed.len() != targets.len() {
        return Err(format!(
            "--weights has {} entries for {} targets: give one per --target",
            parsed.len(),
            targets.len()
        ));
    }
    for (t, w) in targets.iter_mut().zip(parsed) {
        t.weight = w;
    }
    Ok(())
}

/// The target of each of `connections` connections, by weight, interleaved
/// (smooth weighted round-robin: each turn every target gains its weight
/// and the one with the most credit is chosen and pays the total).
pub fn assign(weights: &[u32], connections: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut credit = vec![0i64; weights.len()];
    (0..connections)
        .map(|_| {
            for (c, &w) in credit.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let (chosen, _) = credit
                .iter()
                .enumerate()
                .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
                .expect("at least one target");
            credit[chosen] -= total;
            chosen
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_are_round_robin() {
        assert_eq!(assign(&[1, 1, 1], 7), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(assign(&[1], 3), [0, 0, 0]);
    }

    #[test]
    fn weights_split_connections_in_proportion_interleaved() {
        let a = assign(&[3, 1], 40);
        assert_eq!(a.iter().filter(|&&t| t == 0).count(), 30);
        assert_eq!(&a[..4], [0, 0, 1, 0]);
        let b = assign(&[5, 1, 1], 7);
        assert_eq!(b.iter().filter(|&&t| t == 0).count(), 5);
        assert!(b.windows(2).all(|w| w[0] != w[1] || w[0] == 0));
    }

    #[test]
    fn bad_weights_are_refused_by_name() {
        let mut targets = vec![
            LoadTarget::plain("127.0.0.1:1".parse().unwrap()),
            LoadTarget::plain("127.0.0.1:2".parse().unwrap()),
        ];
        assert!(apply_weights(&mut targets, Some("3,x"))
            .unwrap_err()
            .contains("\"x\""));
        assert!(apply_weights(&mut targets, Some("0,1"))
            .unwrap_err()
            .contains("\"0\""));
        assert!(apply_weights(&mut targets, Some("1"))
            .unwrap_err()
            .contains("one per --target"));
        apply_weights(&mut targets, Some("3, 1")).unwrap();
        assert_eq!((targets[0].weight, targets[1].weight), (3, 1));
    }
}
