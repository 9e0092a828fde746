import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import Retry
import RevokeCore
import RevokeSnapshot

extension RevokeClient {
    /// Why an event stream stopped.
    enum StreamEnd {
        /// The server ended it (a restart, Redis down, a slow reader): resume from the cursor.
        case ended
        /// The cursor is older than the log: load a snapshot.
        case gone
        /// Time to load a fresh snapshot, so expired `jti`s leave the filter.
        case refreshDue
    }

    /// Loads the snapshot, follows the events, reconnects with backoff and resumes from its
    /// cursor, loads a new snapshot on 410 (with backoff too: a log that rolls faster than the
    /// client loads must not become a loop), on an event it cannot read, and every refresh
    /// interval; and, beside it, judges every 100 ms whether the cache is still fresh. The cache
    /// counts as fresh only while its stream is live (a heartbeat came, and no stream ended since).
    func follow(_ cache: RevocationCache) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    cache.judgeFreshness()
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            group.addTask { await self.synchronize(cache) }
            await group.next()
            group.cancelAll()
        }
    }

    private func synchronize(_ cache: RevocationCache) async {
        var cursor: String?
        let clock = cache.configuration.clock
        var loadedAt = clock()
        var failures = 0
        var backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(2))
        // 410s in a row: each waits longer before the next snapshot.
        var reload = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        while !Task.isCancelled {
            do {
                if cursor == nil {
                    let snapshot = try await loadSnapshot()
                    cache.load(snapshot)
                    cursor = snapshot.cursor
                    loadedAt = clock()
                    logger.debug("snapshot loaded", metadata: ["revocations": "\(snapshot.revocations)", "cursor": "\(snapshot.cursor)"])
                }
                let end = try await streamEvents(after: cursor!, into: cache, refreshAt: loadedAt + cache.configuration.refreshInterval) {
                    cursor = $0
                } wentLive: {
                    reload.reset()
                }
                cache.lost()
                failures = 0
                backoff.reset()
                switch end {
                case .ended: continue
                case .gone:
                    logger.info("the event log no longer holds the cache's cursor; loading a snapshot")
                    cursor = nil
                    try? await Task.sleep(for: reload.next())
                case .refreshDue: cursor = nil
                }
            } catch let error as RevocationCache.UnreadableEvent {
                cache.lost()
                logger.warning("an event could not be applied; loading a snapshot", metadata: ["error": "\(error)"])
                cursor = nil
                try? await Task.sleep(for: reload.next())
            } catch {
                cache.lost()
                if Task.isCancelled { return }
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("cannot follow revocations; retrying", metadata: ["error": "\(error)", "attempts": "\(failures)"])
                }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// `GET /v1/snapshot`, decoded.
    func loadSnapshot() async throws -> Snapshot {
        let response = try await http.execute(request("/v1/snapshot"), timeout: .init(configuration.requestTimeout * 5))
        let body = try await response.body.collect(upTo: 1 << 30)
        guard response.status == .ok else {
            throw ServerError(status: Int(response.status.code), description: "GET /v1/snapshot: \(response.status)")
        }
        return try Snapshot(decoding: Array(body.readableBytesView))
    }

    /// Reads `GET /v1/events?since=<cursor>` and applies each event to the cache.
    private func streamEvents(
        after cursor: String, into cache: RevocationCache, refreshAt: ContinuousClock.Instant,
        advance: (String) -> Void, wentLive: () -> Void
    ) async throws -> StreamEnd {
        var request = request("/v1/events?since=\(cursor)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await http.execute(request, timeout: .init(configuration.requestTimeout))
        if response.status == .gone { return .gone }
        guard response.status == .ok else {
            throw ServerError(status: Int(response.status.code), description: "GET /v1/events: \(response.status)")
        }
        var parser = EventStreamParser()
        var live = false
        for try await buffer in response.body {
            for message in parser.feed(buffer.readableBytesView) {
                switch message {
                case .comment:
                    // The server comments only on a stream that has caught up with the log.
                    if !live {
                        live = true
                        wentLive()
                    }
                    cache.heard()
                case .oversized:
                    throw RevocationCache.UnreadableEvent(type: "an event longer than \(EventStreamParser.maximumBytes) bytes")
                case .event(let type, let id, let data):
                    // Applied before its cursor is taken: one it cannot read stops here, and
                    // the snapshot loaded next covers it.
                    guard let change = try? LoggedChange(type: type, data: data.utf8) else { throw RevocationCache.UnreadableEvent(type: type) }
                    try cache.apply(change)
                    guard let id else { throw RevocationCache.UnreadableEvent(type: type) }
                    cache.advanced(to: id)
                    advance(id)
                    cache.configuration.onEvent?(type, id)
                }
            }
            if cache.configuration.clock() >= refreshAt { return .refreshDue }
        }
        return .ended
    }
}
