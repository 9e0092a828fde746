import Redis

/// The store's writes. Each changes the record, appends the event to the stream, trims the
/// stream, and (for admin actions) appends the audit entry, in one atomic step: a follower of
/// the event log can never miss a change, and the audit can never miss an action. A write
/// that changes no record appends no event (admin attempts are still audited).
///
/// The stream is trimmed here, not with `XADD MAXLEN ~`: about every hundredth of the log's
/// length, the oldest entries are removed with `XDEL`, which makes Redis record the largest
/// removed ID (`max-deleted-entry-id`; trimming does not), and `N:events:trim` records how many
/// entries Revoke itself had removed by then. `EventLogState` reads both to tell, exactly,
/// whether anything after a cursor is gone (docs/propagation.md).
///
/// KEYS: 1 the record, 2 the event stream, 3 the audit list, 4 the trim record.
enum Scripts {
    /// Shared tail: the event, the trim, the optional audit entry.
    /// ARGV[n], ARGV[n+1], ARGV[n+2]: stream length, audit JSON ('' for none), audit length.
    private static let appendEventAndAudit = """
        local function audit(n)
          if ARGV[n + 1] ~= '' then
            redis.call('LPUSH', KEYS[3], ARGV[n + 1])
            redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[n + 2]) - 1)
          end
        end
        local function field(flat, name)
          for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
          return nil
        end
        local function trim(keep)
          local length = redis.call('XLEN', KEYS[2])
          local excess = length - keep
          if excess < math.max(1, math.floor(keep / 100)) then return end
          local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', math.min(excess, 1000))
          local ids = {}
          for i, entry in ipairs(old) do ids[i] = entry[1] end
          redis.call('XDEL', KEYS[2], unpack(ids))
          -- Every entry removed so far is older than these, or was removed by XDEL: the largest
          -- removed ID is max-deleted-entry-id, and all removals are now accounted for.
          local info = redis.call('XINFO', 'STREAM', KEYS[2])
          local added = field(info, 'entries-added')
          redis.call('HSET', KEYS[4], 'removed', added - field(info, 'length'), 'added', added)
        end
        local function append(kind, record, n)
          local id = redis.call('XADD', KEYS[2], '*', 'type', kind, 'data', cjson.encode(record))
          trim(tonumber(ARGV[n]))
          audit(n)
          return id
        end
        local function optional(text) if text == '' then return cjson.null end return text end
        local function number(text) if text == '' then return cjson.null end return tonumber(text) end
        """

    /// A revocation's record is one of two shapes, read by `revocation(key)`:
    /// - most revocations (an expiry within 10^8 seconds of the revocation, no reason) are a
    ///   string, the decimal `revoked_at` followed by the eight digits of `expires_at -
    ///   revoked_at` (`173320000000003600`: revoked at 1733200000, expires an hour later).
    ///   Redis holds a decimal that fits 64 bits as an integer in the key's own object, with
    ///   no allocation of its own: about 165 bytes a revocation with a UUID `jti`, against 213
    ///   for a hash of the two fields (docs/scaling.md);
    /// - the others (a reason, no expiry, or an expiry beyond that), and every record written
    ///   before this shape existed, are a hash of `revoked_at`, `expires_at` and `reason`.
    ///
    /// `revocation(key)` returns {revoked_at, expires_at ('' none), reason ('' none)}, or nil.
    /// `compact(revoked_at, expires_at, reason)` returns the string shape, or nil for a hash.
    private static let revocationRecord = """
        local function revocation(key)
          local kind = redis.call('TYPE', key).ok
          if kind == 'none' then return nil end
          if kind == 'hash' then
            local fields = redis.call('HMGET', key, 'revoked_at', 'expires_at', 'reason')
            if not fields[1] then return nil end
            return {fields[1], fields[2] or '', fields[3] or ''}
          end
          local packed = kind == 'string' and redis.call('GET', key)
          if not packed or not string.find(packed, '^[1-9]%d%d%d%d%d%d%d%d+$') then
            error({err = 'WRONGTYPE a revocation record that is neither a hash nor a packed string'})
          end
          local revoked = tonumber(string.sub(packed, 1, -9))
          return {tostring(revoked), tostring(revoked + tonumber(string.sub(packed, -8))), ''}
        end
        local function compact(revoked, expires, reason)
          if reason ~= '' or expires == '' or tonumber(revoked) < 1 then return nil end
          local lifetime = tonumber(expires) - tonumber(revoked)
          if lifetime < 0 or lifetime >= 100000000 then return nil end
          return revoked .. string.format('%08d', lifetime)
        end
        """

    /// ARGV: 1 jti, 2 expires_at ('' none), 3 revoked_at, 4 reason ('' none), 5 TTL seconds
    /// ('' none), 6 stream length, 7 audit JSON, 8 audit length, 9 '1' to write the packed shape
    /// where it fits ('' writes hashes only: `REVOKE_PACKED_RECORDS=false`), 10 '1' when the
    /// write may only strengthen the record (a logout, by whoever holds the token).
    /// Returns {changed (0 or 1), revoked_at, expires_at ('' none), reason ('' none)}: the record
    /// as it stands after the write.
    ///
    /// An administrator's write replaces the record, unless it is the same (same expiry and
    /// reason: left as it is, no event, the attempt audited). A strengthening write never erases
    /// anything: it only makes the record last longer (a later expiry, or none), and keeps its
    /// `revoked_at` and reason; one that would not do that changes nothing and writes nothing.
    static let revoke = RedisScript(
        appendEventAndAudit + "\n" + revocationRecord + """

            local existing = revocation(KEYS[1])
            local revoked_at, expires, reason, ttl = ARGV[3], ARGV[2], ARGV[4], ARGV[5]
            if existing and ARGV[10] == '1' then
              local longer = existing[2] ~= '' and (expires == '' or tonumber(expires) > tonumber(existing[2]))
              if not longer then return {0, existing[1], existing[2], existing[3]} end
              revoked_at, reason = existing[1], existing[3]
            elseif existing and existing[2] == expires and existing[3] == reason then
              audit(6)
              return {0, existing[1], existing[2], existing[3]}
            end
            redis.call('DEL', KEYS[1])
            local packed = ARGV[9] == '1' and compact(revoked_at, expires, reason)
            if packed then
              redis.call('SET', KEYS[1], packed)
            else
              -- The jti is the key's own suffix: not repeated in the hash.
              local fields = {'revoked_at', revoked_at}
              if expires ~= '' then fields[#fields + 1] = 'expires_at'; fields[#fields + 1] = expires end
              if reason ~= '' then fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason end
              redis.call('HSET', KEYS[1], unpack(fields))
            end
            if ttl ~= '' then redis.call('EXPIRE', KEYS[1], ttl) end
            append('revocation', {jti = ARGV[1], expires_at = number(expires),
              revoked_at = tonumber(revoked_at), reason = optional(reason)}, 6)
            return {1, revoked_at, expires, reason}
            """)

    /// KEYS: 1 the record. Returns {revoked_at, expires_at ('' none), reason ('' none)}, or
    /// nil when the `jti` is not revoked.
    static let readRevocation = RedisScript(
        revocationRecord + """

            return revocation(KEYS[1]) or false
            """)

    /// ARGV: 1 jti, 2 stream length, 3 audit JSON, 4 audit length. Returns 0 when nothing was
    /// revoked (no event, no audit: nothing was done), else the event ID.
    static let unrevoke = RedisScript(
        appendEventAndAudit + """

            if redis.call('DEL', KEYS[1]) == 0 then return 0 end
            return append('unrevocation', {jti = ARGV[1]}, 2)
            """)

    /// KEYS: 5 the record of a one-time message already applied (a logout token's `jti`), or the
    /// record key again when there is none.
    /// ARGV: 1 claim, 2 value, 3 before, 4 expires_at, 5 now, 6 reason ('' none), 7 TTL seconds,
    /// 8 stream length, 9 audit JSON, 10 audit length, 11 '1' when an attempt that changes
    /// nothing is audited too (an administrator's), 12 seconds to remember the one-time message
    /// ('' for none).
    /// Returns {changed (0, 1, or 2 for a one-time message seen before), before, created_at,
    /// reason or false, expires_at}: an existing cutoff that reaches as far is left unchanged, a
    /// later `before` moves it forward. A write that is not an administrator's keeps the
    /// existing cutoff's reason: it never erases what an administrator recorded.
    static let setCutoff = RedisScript(
        appendEventAndAudit + """

            if ARGV[12] ~= '' and not redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[12]) then
              return {2, ARGV[3], ARGV[5], false, ARGV[4]}
            end
            local existing = redis.call('HMGET', KEYS[1], 'before', 'created_at', 'reason', 'expires_at')
            if existing[1] and tonumber(existing[1]) >= tonumber(ARGV[3]) then
              if ARGV[11] == '1' then audit(8) end
              return {0, existing[1], existing[2] or ARGV[5], existing[3] or false, existing[4] or ''}
            end
            local created = existing[2] or ARGV[5]
            local reason = ARGV[6]
            if ARGV[11] ~= '1' and existing[3] then reason = existing[3] end
            redis.call('DEL', KEYS[1])
            local fields = {'claim', ARGV[1], 'value', ARGV[2], 'before', ARGV[3], 'expires_at', ARGV[4], 'created_at', created}
            if reason ~= '' then fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason end
            redis.call('HSET', KEYS[1], unpack(fields))
            redis.call('EXPIRE', KEYS[1], ARGV[7])
            append('cutoff', {claim = ARGV[1], value = ARGV[2], before = tonumber(ARGV[3]),
              expires_at = tonumber(ARGV[4]), created_at = tonumber(created), reason = optional(reason)}, 8)
            return {1, ARGV[3], created, reason ~= '' and reason or false, ARGV[4]}
            """)

    /// ARGV: 1 claim, 2 value, 3 stream length, 4 audit JSON, 5 audit length. Returns 0 when
    /// there was no cutoff, else the event ID.
    static let deleteCutoff = RedisScript(
        appendEventAndAudit + """

            if redis.call('DEL', KEYS[1]) == 0 then return 0 end
            return append('uncutoff', {claim = ARGV[1], value = ARGV[2]}, 3)
            """)
}

extension Scripts {
    /// ARGV: 1 kid, 2 created_at, 3 reason ('' none), 4 stream length, 5 audit JSON, 6 audit
    /// length. Returns {created (0 or 1), created_at, reason or false}: a key already blocked
    /// stays as it was (no event). No TTL: a leaked key stays blocked until an admin unblocks it.
    static let blockKey = RedisScript(
        appendEventAndAudit + """

            local existing = redis.call('HMGET', KEYS[1], 'created_at', 'reason')
            if existing[1] then
              audit(4)
              return {0, existing[1], existing[2] or false}
            end
            local fields = {'kid', ARGV[1], 'created_at', ARGV[2]}
            if ARGV[3] ~= '' then fields[#fields + 1] = 'reason'; fields[#fields + 1] = ARGV[3] end
            redis.call('HSET', KEYS[1], unpack(fields))
            append('keyblock', {kid = ARGV[1], created_at = tonumber(ARGV[2]), reason = optional(ARGV[3])}, 4)
            return {1, ARGV[2], ARGV[3] ~= '' and ARGV[3] or false}
            """)

    /// ARGV: 1 kid, 2 stream length, 3 audit JSON, 4 audit length. Returns 0 when the key was
    /// not blocked, else the event ID.
    static let unblockKey = RedisScript(
        appendEventAndAudit + """

            if redis.call('DEL', KEYS[1]) == 0 then return 0 end
            return append('unkeyblock', {kid = ARGV[1]}, 2)
            """)

    /// What `EventLogState` is read from, in one atomic step: `XINFO STREAM` of KEYS[1] (false
    /// when there is no stream) and the trim record KEYS[2] (`removed`, `added`, or false).
    static let eventLogState = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return {false, redis.call('HMGET', KEYS[2], 'removed', 'added')} end
        return {redis.call('XINFO', 'STREAM', KEYS[1]), redis.call('HMGET', KEYS[2], 'removed', 'added')}
        """)

    /// The events after ARGV[1] in KEYS[1] (at most ARGV[2]) and the state `eventLogState` reads,
    /// in one atomic step: the state proves whether the page follows the cursor without a gap.
    static let eventsAfter = RedisScript("""
        local noted = redis.call('HMGET', KEYS[2], 'removed', 'added')
        if redis.call('EXISTS', KEYS[1]) == 0 then return {false, noted, {}} end
        return {redis.call('XINFO', 'STREAM', KEYS[1]), noted, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
        """)
}
