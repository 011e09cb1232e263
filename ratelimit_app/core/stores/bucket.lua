-- Token-bucket decisions, atomically: read, refill, consume, write, expire.
-- One call decides a batch of independent requests in order (one request when nothing
-- else is waiting), each exactly as it would be decided alone. A request has one bucket,
-- or several that must all admit it (a composite policy): then all consume or none does,
-- and the keys share a hash tag so a cluster keeps them in one slot. Each bucket follows
-- ratelimit_app/core/bucket.py consume() line for line. Numbers cross the wire as '%.17g'
-- strings because Lua replies truncate numbers to integers.
--
-- KEYS     the buckets of every request, request after request
-- ARGV[1]  '1': write (take); '0': read only (peek)
-- ARGV[2]  the requests, as one JSON array of numbers (one argument is far cheaper for a
--   client to send than many, and cjson reads it faster than Lua can split a string);
--   per request: now (null = this server's TIME), n (its buckets), cost c, then per
--   bucket capacity C_i and rate R_i
-- Reply: one string, per request: allowed (1/0), remaining_1, ..., remaining_n
local write = ARGV[1] == '1'
local max_ttl = 2147483648
-- A key lives until its bucket is full again, measured on the request's clock. A clock
-- of the client's own (tests move one by hand) need not run with Redis's expiry clock,
-- so keys written on one live at least an hour (CLIENT_CLOCK_MIN_TTL in config.py).
local client_clock_min_ttl = 3600
local fields = cjson.decode(ARGV[2])
local server_now
local reply, k, a = {}, 0, 1
while a <= #fields do
  local now, min_ttl = fields[a], client_clock_min_ttl
  if now == cjson.null then
    min_ttl = 1
    if not server_now then
      local t = redis.call('TIME')
      server_now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    end
    now = server_now
  end
  local n, cost = fields[a + 1], fields[a + 2]
  local tokens, updated, allowed = {}, {}, 1
  for i = 1, n do
    local capacity, rate = fields[a + 1 + 2 * i], fields[a + 2 + 2 * i]
    -- a bucket never seen, or expired, is full
    local t, u = capacity, now
    local raw = redis.call('GET', KEYS[k + i])
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
  reply[#reply + 1] = allowed
  for i = 1, n do
    -- a denial consumes nothing and writes nothing (the stored state still holds); an
    -- admission takes the cost and stores the state until the bucket would be full again
    local t = tokens[i]
    if allowed == 1 then t = t - cost end
    local text = string.format('%.17g', t)
    if allowed == 1 and write then
      local capacity, rate = fields[a + 1 + 2 * i], fields[a + 2 + 2 * i]
      local ttl = math.max(min_ttl, math.min(max_ttl, math.ceil((capacity - t) / rate)))
      redis.call('SET', KEYS[k + i], text .. string.format(' %.17g', updated[i]), 'EX', ttl)
    end
    reply[#reply + 1] = text
  end
  k = k + n
  a = a + 3 + 2 * n
end
return table.concat(reply, ' ')
