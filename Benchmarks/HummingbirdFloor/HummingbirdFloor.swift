import EventLoopExecutor
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird with nothing of Revoke in it: one route answering `GET /20b.txt` with 20 bytes,
/// its connections served as `revoked` serves them (each connection's task prefers its channel's
/// event loop). `HTTPBenchmark` measures it beside `revoked` and nginx: the most a request
/// through this framework can reach on the machine at hand.
///
/// usage: HummingbirdFloor <port>
@main
struct HummingbirdFloor {
    struct Channel: ServerChildChannel {
        typealias Value = HTTP1Channel.Value
        let responder: HTTPChannelHandler.Responder

        func setup(channel: any NIOCore.Channel, logger: Logger) -> EventLoopFuture<Value> {
            HTTP1Channel(responder: responder).setup(channel: channel, logger: logger)
        }

        func handle(value: Value, logger: Logger) async {
            await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
                await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
            }
        }
    }

    static func main() async throws {
        guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
            print("usage: HummingbirdFloor <port>")
            return
        }
        let router = Router()
        router.get("/20b.txt") { _, _ in "0123456789abcdefghi\n" }
        var logger = Logger(label: "HummingbirdFloor")
        logger.logLevel = .warning
        let app = Application(
            router: router, server: HTTPServerBuilder { Channel(responder: $0) },
            configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        try await app.runService()
    }
}
