//! Which cores the shards run on.
//!
//! The default is one shard per CPU in the process's affinity mask (as read by
//! `core_affinity`, i.e. `sched_getaffinity`), so `taskset -c 0 torsion serve
//! …` gives one shard on core 0. `--shards N` takes the first N allowed cores;
//! `--cores 0,2,3` names them. Asking for cores the process may not use is an
//! error at start-up, never a panic.

use std::collections::BTreeSet;

/// Why a core plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The affinity mask could not be read or is empty.
    #[error("cannot determine the CPUs this process may run on")]
    NoCores,
    /// `--shards 0`.
    #[error("the shard count must be at least 1")]
    ZeroShards,
    /// An empty `--cores` list.
    #[error("the core list is empty")]
    EmptyCoreList,
    /// More shards than allowed cores.
    #[error("{asked} shards asked for, but only {allowed} cores are allowed ({list})")]
    TooManyShards {
        /// Shards asked for.
        asked: usize,
        /// Allowed cores.
        allowed: usize,
        /// The allowed cores, as a list.
        list: String,
    },
    /// A named core outside the affinity mask.
    #[error("core {core} is not allowed for this process (allowed: {list})")]
    CoreNotAllowed {
        /// The core asked for.
        core: usize,
        /// The allowed cores, as a list.
        list: String,
    },
    /// The same core twice in `--cores`.
    #[error("core {0} is listed twice")]
    DuplicateCore(usize),
    /// `--shards` and `--cores` disagree.
    #[error("{shards} shards asked for but {cores} cores listed")]
    ShardsCoresMismatch {
        /// `--shards`.
        shards: usize,
        /// Length of `--cores`.
        cores: usize,
    },
    /// A malformed `--cores` list.
    #[error("invalid core list \"{0}\" (expected e.g. \"0,2,3\" or \"0-3\")")]
    InvalidList(String),
}

/// The cores this process may run on, ascending.
pub fn allowed_cores() -> Result<Vec<usize>, CoreError> {
    let ids = core_affinity::get_core_ids().ok_or(CoreError::NoCores)?;
    let set: BTreeSet<usize> = ids.into_iter().map(|c| c.id).collect();
    if set.is_empty() {
        return Err(CoreError::NoCores);
    }
    Ok(set.into_iter().collect())
}

fn format_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Chooses one core per shard from `allowed`, honouring `shards` and `cores`.
pub fn plan_cores(
    allowed: &[usize],
    shards: Option<usize>,
    cores: Option<&[usize]>,
) -> Result<Vec<usize>, CoreError> {
    if allowed.is_empty() {
        return Err(CoreError::NoCores);
    }
    if shards == Some(0) {
        return Err(CoreError::ZeroShards);
    }
    match cores {
        Some(list) => {
            if list.is_empty() {
                return Err(CoreError::EmptyCoreList);
            }
            let mut seen = BTreeSet::new();
            for &core in list {
                if !allowed.contains(&core) {
                    return Err(CoreError::CoreNotAllowed {
                        core,
                        list: format_list(allowed),
                    });
                }
                if !seen.insert(core) {
                    return Err(CoreError::DuplicateCore(core));
                }
            }
            if let Some(n) = shards {
                if n != list.len() {
                    return Err(CoreError::ShardsCoresMismatch {
                        shards: n,
                        cores: list.len(),
                    });
                }
            }
            Ok(list.to_vec())
        }
        None => {
            let n = shards.unwrap_or(allowed.len());
            if n > allowed.len() {
                return Err(CoreError::TooManyShards {
                    asked: n,
                    allowed: allowed.len(),
                    list: format_list(allowed),
                });
            }
            Ok(allowed[..n].to_vec())
        }
    }
}

/// Parses a core list such as `0,2,3` or `0-3` or `0-1,4`.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, CoreError> {
    let bad = || CoreError::InvalidList(s.to_string());
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad());
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_every_allowed_core() {
        assert_eq!(plan_cores(&[0, 1], None, None).unwrap(), vec![0, 1]);
        assert_eq!(plan_cores(&[3], None, None).unwrap(), vec![3]);
    }

    #[test]
    fn shards_take_the_first_allowed_cores() {
        assert_eq!(plan_cores(&[0, 2, 5], Some(2), None).unwrap(), vec![0, 2]);
        assert_eq!(
            plan_cores(&[0, 1], Some(3), None).unwrap_err(),
            CoreError::TooManyShards {
                asked: 3,
                allowed: 2,
                list: "0,1".into()
            }
        );
        assert_eq!(
            plan_cores(&[0], Some(0), None).unwrap_err(),
            CoreError::ZeroShards
        );
    }

    #[test]
    fn named_cores_must_be_allowed_and_distinct() {
        assert_eq!(
            plan_cores(&[0, 1, 2], None, Some(&[2, 0])).unwrap(),
            vec![2, 0]
        );
        assert_eq!(
            plan_cores(&[0, 1], None, Some(&[7])).unwrap_err(),
            CoreError::CoreNotAllowed {
                core: 7,
                list: "0,1".into()
            }
        );
        assert_eq!(
            plan_cores(&[0, 1], None, Some(&[1, 1])).unwrap_err(),
            CoreError::DuplicateCore(1)
        );
        assert_eq!(
            plan_cores(&[0, 1], Some(1), Some(&[0, 1])).unwrap_err(),
            CoreError::ShardsCoresMismatch {
                shards: 1,
                cores: 2
            }
        );
        assert_eq!(
            plan_cores(&[0, 1], Some(2), Some(&[1, 0])).unwrap(),
            vec![1, 0]
        );
        assert_eq!(
            plan_cores(&[0], None, Some(&[])).unwrap_err(),
            CoreError::EmptyCoreList
        );
    }

    #[test]
    fn core_lists_parse() {
        assert_eq!(parse_core_list("0,2,3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_core_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_core_list("0-1, 4").unwrap(), vec![0, 1, 4]);
        for bad in ["", "a", "1,", "3-1", "-1", "1--2", "0-999999"] {
            assert!(parse_core_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_process_has_allowed_cores() {
        let cores = allowed_cores().unwrap();
        assert!(!cores.is_empty());
    }
}
