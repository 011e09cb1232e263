-- Token-bucket decisions, atomically: read, refill, consume, write, expire.
-- One bucket, or several that must all admit the request (a composite policy): then all
-- consume or none does, and the keys share a hash tag so a cluster keeps them in one slot.
-- Each bucket follows ratelimit_app/core/bucket.py consume() line for line. Numbers cross
-- the wire as '%.17g' strings because Lua replies truncate numbers to integers.
--
-- KEYS[i]  bucket i, stored as the string '<tokens> <updated_at>'
-- ARGV[1]  cost c     ARGV[2] now ('' = this server's TIME)   ARGV[3] '1' take, '0' peek
-- ARGV[1 + 3i], ARGV[2 + 3i], ARGV[3 + 3i]  capacity C_i, refill rate R_i, ttl_i (seconds)
-- Reply: { allowed (0/1), remaining_1, ..., remaining_n }
local cost = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end

local tokens, updated, allowed = {}, {}, 1
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[1 + 3 * i])
  local rate = tonumber(ARGV[2 + 3 * i])
  -- a bucket never seen, or expired, is full
  local t, u = capacity, now
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local sep = string.find(raw, ' ', 1, true)
    t = tonumber(string.sub(raw, 1, sep - 1))
    u = tonumber(string.sub(raw, sep + 1))
    -- if now > updated_at: tokens = min(C, tokens + (now - updated_at) * R); updated_at = now
    if now > u then
      t = math.min(capacity, t + (now - u) * rate)
      u = now
    -- elif tokens > capacity: tokens = capacity (the capacity was lowered since)
    elseif t > capacity then
      t = capacity
    end
  end
  tokens[i], updated[i] = t, u
  -- if tokens >= cost: allowed (here: only if every bucket holds the cost)
  if t < cost then allowed = 0 end
end

local reply = { allowed }
for i = 1, #KEYS do
  -- return tokens - cost when allowed, else tokens: a denial consumes nothing
  if allowed == 1 then tokens[i] = tokens[i] - cost end
  if ARGV[3] == '1' then
    redis.call('SET', KEYS[i], string.format('%.17g %.17g', tokens[i], updated[i]),
      'EX', tonumber(ARGV[3 + 3 * i]))
  end
  reply[i + 1] = string.format('%.17g', tokens[i])
end
return reply
