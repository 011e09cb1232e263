-- An operator's change to buckets, atomically: refill, then add tokens or empty them.
-- Used for grants, drains (the admin, the management command) and refunds. Mirrors
-- ratelimit_app/core/bucket.py adjust() line for line; bucket.lua does the requests.
--
-- KEYS[i]  bucket i, stored as the string '<tokens> <updated_at>'
-- ARGV[1]  tokens to add a     ARGV[2] now ('' = this server's TIME)
-- ARGV[3]  '1' empty the buckets, '0' add a (clamped to [0, capacity])
-- ARGV[2 + 2i], ARGV[3 + 2i]  capacity C_i, refill rate R_i
-- Reply: { tokens_1, ..., tokens_n } after the change, as '%.17g' strings
-- A key lives until its bucket is full again, as bucket.lua writes it (and for the same
-- reason at least an hour on a client's own clock).
local add = tonumber(ARGV[1])
local max_ttl = 2147483648
local now, min_ttl
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  min_ttl = 1
else
  now = tonumber(ARGV[2])
  min_ttl = 3600
end

local reply = {}
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 + 2 * i])
  local rate = tonumber(ARGV[3 + 2 * i])
  -- refill(state, config, now): a bucket never seen, or expired, is full
  local t, u = capacity, now
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local sep = string.find(raw, ' ', 1, true)
    t = tonumber(string.sub(raw, 1, sep - 1))
    u = tonumber(string.sub(raw, sep + 1))
    if now > u then
      t = math.min(capacity, t + (now - u) * rate)
      u = now
    elseif t > capacity then
      t = capacity
    end
  end
  -- tokens = 0 if empty else max(0, min(C, tokens + add))
  if ARGV[3] == '1' then
    t = 0
  else
    t = math.max(0, math.min(capacity, t + add))
  end
  local ttl = math.max(min_ttl, math.min(max_ttl, math.ceil((capacity - t) / rate)))
  redis.call('SET', KEYS[i], string.format('%.17g %.17g', t, u), 'EX', ttl)
  reply[i] = string.format('%.17g', t)
end
return reply
