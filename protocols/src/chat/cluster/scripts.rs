//! The Lua scripts that keep names unique across nodes. Redis runs a
//! script atomically, so of any number of nodes racing for a name exactly
//! one wins.
//!
//! Keys: `<prefix>names` is a hash name → holder (a node key,
//! `<node id>/<epoch>`); `<prefix>node:<node key>` exists while the node
//! is alive (it renews it under a lease). A name whose holder's key has
//! expired is free: a node killed with `kill -9` loses its names when its
//! lease runs out, with nobody having to clean up after it (its entries
//! are overwritten by the next claim or removed by the next `/who`).
//!
//! These scripts touch node keys they are not given in `KEYS` (the holder
//! is only known inside the script), which Redis allows on a single
//! server but not in Redis Cluster: a node's `--cluster` is one Redis (or
//! a primary with replicas), not a Redis Cluster.

/// Claims `ARGV[1]` for `ARGV[2]` (node key); `ARGV[3]` is the node-key
/// prefix. 1: granted; 0: a live node holds it.
pub(crate) const CLAIM: &str = r"
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder and holder ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. holder) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// Releases `ARGV[1]` if `ARGV[2]` holds it.
pub(crate) const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
";

/// After a lapsed lease: claims again every name in `ARGV[3..]` for
/// `ARGV[1]` (`ARGV[2]`: node-key prefix); returns the ones a live node
/// took meanwhile.
pub(crate) const REASSERT: &str = r"
local lost = {}
for i = 3, #ARGV do
  local holder = redis.call('HGET', KEYS[1], ARGV[i])
  if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. holder) == 1 then
    table.insert(lost, ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
  end
end
return lost
";

/// The names held by live nodes other than `ARGV[1]` (`ARGV[2]`: node-key
/// prefix); forgets names whose holder is dead.
pub(crate) const WHO: &str = r"
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local name, holder = all[i], all[i + 1]
  if holder ~= ARGV[1] then
    local live = alive[holder]
    if live == nil then
      live = redis.call('EXISTS', ARGV[2] .. holder) == 1
      alive[holder] = live
    end
    if live then
      table.insert(out, name)
    else
      redis.call('HDEL', KEYS[1], name)
    end
  end
end
return out
";
