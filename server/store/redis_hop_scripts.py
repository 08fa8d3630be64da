"""The Lua scripts of a Redis hop (server/store/redis_backend.py runs them): claim, lock,
commit (plain, tracked with the open-sessions index and funnel, with a resume record), release,
the expiry sweep and the profile merge. Each runs in one round trip; all keys of one script share
a slot (the session's hash tag, or the profile's) so they also run on Redis Cluster."""
from __future__ import annotations

from .redis_funnel import FUNNEL_COMMIT, FUNNEL_SWEEP

# The hop protocol of server/store/base.py. The dedupe record (KEYS seen) holds the claim token
# of the delivery that owns the request, '1' once committed (done: a shared integer, the
# cheapest value Redis holds, and dedupe records outnumber sessions); the owner key holds the
# subscriber address the session belongs to. All of a session's keys share its hash tag.

# KEYS seen, lock, session, owner   ARGV token, dedupe ttl (s), lock ttl (ms), owner address or ''
# The four keys are read with one MGET: a script runs atomically, so reading them all before
# the writes below reads what a GET at each step would (each write touches a key read earlier
# only), and each redis.call from Lua costs more than a whole GET from a client (two scripts
# on every hop: bench/hops.py).
CLAIM = """
local owner, seen, holder, session = unpack(redis.call('MGET', KEYS[4], KEYS[1], KEYS[2], KEYS[3]))
if ARGV[4] ~= '' and owner and owner ~= ARGV[4] then return {'foreign'} end
if seen == '1' then return {'duplicate'} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if holder and holder ~= seen then return {'busy'} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return {'ok', session}
"""

# KEYS lock, session, seen, owner   ARGV token, lock ttl (ms), '1' when a request is checked, owner or ''
LOCK = """
if ARGV[3] == '1' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'superseded'} end
if ARGV[4] ~= '' then
  local owner = redis.call('GET', KEYS[4])
  if owner and owner ~= ARGV[4] then return {'foreign'} end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return {'busy'} end
return {'ok', redis.call('GET', KEYS[2])}
"""

# KEYS lock, session, seen, owner [, open index]
# ARGV token, session or '', ttl (s), '1' when a request is marked, owner or '' [, index member or '', score]
# (lock and request read with one MGET, as in CLAIM)
COMMIT_SAVE = """
local holder, seen = unpack(redis.call('MGET', KEYS[1], KEYS[3]))
if ARGV[4] == '1' and seen ~= ARGV[1] then return 'superseded' end
if holder ~= ARGV[1] then return 'lost' end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2], KEYS[4])
else
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[3]) end
end
redis.call('DEL', KEYS[1])
if ARGV[4] == '1' then redis.call('SET', KEYS[3], '1', 'KEEPTTL') end
"""
COMMIT = COMMIT_SAVE + "return 'saved'\n"

# Single node: the commit also keeps the open-sessions index (a sorted set scored by expiry,
# +0.5 once the subscriber has replied), in the same round trip.
COMMIT_TRACKED = COMMIT_SAVE + """
if ARGV[6] ~= '' then
  if ARGV[2] == '' then redis.call('ZREM', KEYS[5], ARGV[6]) else redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6]) end
end
""" + FUNNEL_COMMIT + """return 'saved'
"""

# Single node, a hop that keeps or forgets a resume record (server/bdapps/resume.py): the record
# (the last key; data and TTL the last two arguments, '' forgets it) is taken off KEYS and ARGV,
# the commit above runs as a function on what is left (it reads #KEYS and #ARGV), and the record
# is written only when the session was saved. Same round trip, no stale record.
COMMIT_TRACKED_RESUME = """
local resume_key, resume_ttl = table.remove(KEYS), table.remove(ARGV)
local resume_data = table.remove(ARGV)
local function commit()
""" + COMMIT_TRACKED + """end
local outcome = commit()
if outcome == 'saved' then
  if resume_data == '' then redis.call('DEL', resume_key)
  else redis.call('SET', resume_key, resume_data, 'EX', resume_ttl) end
end
return outcome
"""

# Pop at most ARGV[3] of the sessions whose expiry passed (the lowest scores, so ranks 0..n-1):
# each is counted by exactly one process. A script holds Redis for every other client, so the
# store pops in chunks (RedisStore.sweep_expired) and each chunk's work is a few calls whatever
# its size; one ZREM per session made a 10,000-session sweep hold Redis for ~70 ms.
# KEYS open index [, waiting]   ARGV now, funnel retention (s), limit
SWEEP = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
if #gone > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #gone / 2 - 1) end
""" + FUNNEL_SWEEP + """return gone
"""

# KEYS lock, seen   ARGV token, '1' when a request is marked
RELEASE = """
if ARGV[2] == '1' then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'superseded' end
  redis.call('SET', KEYS[2], '1', 'KEEPTTL')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'released'
"""

# Change some fields of a JSON profile in place (cjson is built into Redis' Lua), so writers
# of different fields never undo each other. KEYS profile   ARGV ttl (s), JSON object of changes
MERGE_PROFILE = """
local profile = {}
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then profile = decoded end
end
for field, value in pairs(cjson.decode(ARGV[2])) do profile[field] = value end
redis.call('SET', KEYS[1], cjson.encode(profile), 'EX', ARGV[1])
return 1
"""
