-- One token-bucket decision, atomically: read, refill, consume, write, expire.
-- Mirrors ratelimit_app/core/bucket.py line for line; numbers cross the wire as
-- '%.17g' strings because Lua replies truncate numbers to integers.
--
-- KEYS[1]  bucket key
-- ARGV[1]  capacity C      ARGV[2] refill rate R     ARGV[3] cost c
-- ARGV[4]  ttl seconds     ARGV[5] now ('' = this server's TIME)
-- ARGV[6]  '1' to take, '0' to peek (no write)
-- State is stored as the string '<tokens> <updated_at>'.
-- Reply: { allowed (0/1), remaining tokens as a string }
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[5])
end

-- refill(): a bucket never seen, or expired, is full
local tokens, updated = capacity, now
local raw = redis.call('GET', KEYS[1])
if raw then
  local sep = string.find(raw, ' ', 1, true)
  tokens = tonumber(string.sub(raw, 1, sep - 1))
  updated = tonumber(string.sub(raw, sep + 1))
  -- consume(): refill only when time moved forward; a clock stepping back refills
  -- nothing and never drains, and updated_at never moves backwards
  if now > updated then
    tokens = math.min(capacity, tokens + (now - updated) * rate)
    updated = now
  elseif tokens > capacity then
    tokens = capacity
  end
end

if ARGV[6] == '0' then
  return { 1, string.format('%.17g', tokens) }
end

-- take(): allowed = tokens >= cost; consume only when allowed
local allowed = 0
if tokens >= cost then
  allowed = 1
  tokens = tokens - cost
end
redis.call('SET', KEYS[1], string.format('%.17g %.17g', tokens, updated), 'EX', tonumber(ARGV[4]))
return { allowed, string.format('%.17g', tokens) }
