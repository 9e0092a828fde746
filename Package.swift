// swift-tools-version:6.2
import PackageDescription

/// Settings shared by every target of ours.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "revoke",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "revoked", targets: ["revoked"]),
        .executable(name: "revokectl", targets: ["revokectl"]),
        .library(name: "RevokeClient", targets: ["RevokeClient"]),
        .library(name: "RevokeHummingbird", targets: ["RevokeHummingbird"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // hiredis, as Debian ships it (libhiredis-dev). Only the Redis target imports it.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        // Read sections for the client's cache: no atomic read-modify-write on the read path
        // (membarrier(2) on the writer's side; readers fence themselves where it is missing).
        .target(name: "CReadSection"),
        // Processes this program starts and owns (posix_spawn, clean signal mask, reaped by pid).
        .target(
            name: "ChildProcess",
            swiftSettings: swiftSettings
        ),
        // Runs tasks on one NIO event loop (a task executor preference): the HTTP connections'
        // requests on their own loop, and callers of a Redis connection beside it.
        .target(
            name: "EventLoopExecutor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Backoff with jitter: every retry loop (Redis reconnects, the event hub, the client's
        // stream, the embedded redis-server) waits the same way.
        .target(
            name: "Retry",
            swiftSettings: swiftSettings
        ),
        // The snapshot's format: the Bloom filter of revoked jtis, its hash, the binary codec.
        // Shared by the server and the client; depends on nothing of either.
        .target(
            name: "RevokeSnapshot",
            dependencies: [.product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: swiftSettings
        ),
        // The verifiers' client: remote checks, and the local cache kept fresh from the events.
        .target(
            name: "RevokeClient",
            dependencies: [
                "CReadSection", "RevokeCore", "RevokeSnapshot", "Retry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A Hummingbird middleware for verifiers, on top of the client.
        .target(
            name: "RevokeHummingbird",
            dependencies: [
                "RevokeClient", "RevokeCore", "RevokeHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // A blocking loopback HTTP/1.1 socket for tests and benchmarks that write requests by hand.
        .target(
            name: "LoopbackHTTP",
            path: "Tests/LoopbackHTTP",
            swiftSettings: swiftSettings
        ),
        // Redis over SwiftNIO with hiredis' reply reader: connections (plain or TLS), automatic
        // pipelining, reconnection, Sentinel, scripts, streams. Knows nothing of JWTs.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                "Retry",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // redis-server processes this program owns: the embedded store of revoked, the private
        // server of each test and benchmark.
        .target(
            name: "RedisSupervisor",
            dependencies: ["ChildProcess", "Redis"],
            swiftSettings: swiftSettings
        ),
        // The contract's HTTP errors as Hummingbird responses, shared by the server and the
        // verifiers' middleware: one JSON error body, one 503 with Retry-After.
        .target(
            name: "RevokeHTTP",
            dependencies: [
                "RevokeCore",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The domain, without I/O: records, TTL rules, cutoff matching, claims, limits.
        .target(
            name: "RevokeCore",
            swiftSettings: swiftSettings
        ),
        // The domain over Redis: key layout, write scripts, event log, audit, checks.
        .target(
            name: "RevokeStore",
            dependencies: ["RevokeCore", "Redis", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The sync engine: follows the event log and keeps what verifiers load and follow in
        // step with it (the event hub and its streams, the snapshot keeper, replays). No HTTP.
        .target(
            name: "RevokeSync",
            dependencies: [
                "Retry", "RevokeCore", "RevokeSnapshot", "RevokeStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP application: configuration, routes, services.
        .target(
            name: "RevokeServer",
            dependencies: [
                "EventLoopExecutor", "Redis", "RedisSupervisor", "Retry", "RevokeCore", "RevokeHTTP", "RevokeStore", "RevokeSnapshot", "RevokeSync",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "revoked",
            dependencies: [
                "RevokeServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operators' command line, over the HTTP API only.
        .executableTarget(
            name: "revokectl",
            dependencies: [
                "RevokeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support shared by every test target that needs a private redis-server (or a
        // Sentinel deployment, or TLS certificates), and by the benchmarks.
        .target(
            name: "RedisTestSupport",
            dependencies: ["ChildProcess", "Redis", "RedisSupervisor"],
            path: "Tests/RedisTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisTests",
            dependencies: ["EventLoopExecutor", "Redis", "RedisSupervisor", "CHiredis", "RedisTestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeCoreTests",
            dependencies: ["RevokeCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeSnapshotTests",
            dependencies: ["RevokeSnapshot"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeStoreTests",
            dependencies: [
                "RevokeStore", "RevokeCore", "Redis", "RedisSupervisor", "RedisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The README's Swift examples, built in a package of their own.
        .testTarget(
            name: "ReadmeTests",
            dependencies: ["ChildProcess"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeSyncTests",
            dependencies: ["RevokeCore", "RevokeSnapshot", "RevokeStore", "RevokeSync"],
            swiftSettings: swiftSettings
        ),
        // Test support for everything that runs revoked: in process (`withRevoked`), as a
        // process (`Revoked`, `Revokectl`), by raw HTTP, and a caching client beside it.
        .target(
            name: "RevokeTestSupport",
            dependencies: [
                "ChildProcess", "LoopbackHTTP", "Redis", "RedisSupervisor", "RedisTestSupport", "RevokeClient", "RevokeCore", "RevokeServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/RevokeTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeServerTests",
            dependencies: [
                "RevokeServer", "RevokeStore", "RevokeSync", "RevokeTestSupport", "RedisTestSupport", "Redis", "RedisSupervisor", "RevokeCore",
                "ChildProcess", "LoopbackHTTP", "RevokeClient", "RevokeSnapshot", "RevokeHTTP",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The verifiers' client against a live revoked: its cache, its stream, its clock.
        .testTarget(
            name: "RevokeClientTests",
            dependencies: [
                "ChildProcess", "Redis", "RedisSupervisor", "RedisTestSupport", "RevokeClient", "RevokeCore", "RevokeServer", "RevokeSnapshot",
                "RevokeTestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RevokeHummingbirdTests",
            dependencies: [
                "Redis", "RedisSupervisor", "RedisTestSupport", "RevokeClient", "RevokeCore", "RevokeHummingbird", "RevokeTestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // revokectl as a process against a live revoked.
        .testTarget(
            name: "RevokectlTests",
            dependencies: [
                "ChildProcess", "Redis", "RedisSupervisor", "RedisTestSupport", "RevokeCore", "RevokeServer", "RevokeTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // `make bench`: the caching client: local checks, memory, snapshot, propagation.
        .executableTarget(
            name: "ClientBenchmark",
            dependencies: [
                "ChildProcess", "Redis", "RedisSupervisor", "RevokeClient", "RevokeCore", "RevokeSnapshot",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/ClientBenchmark",
            swiftSettings: swiftSettings
        ),
        // `make bench`: wrk runs, the release revoked started and waited for, process memory.
        .target(
            name: "BenchmarkSupport",
            dependencies: ["ChildProcess", "LoopbackHTTP", "RedisSupervisor"],
            path: "Benchmarks/Support",
            swiftSettings: swiftSettings
        ),
        // `make bench`: wrk against revoked's checks, the peer, and nginx, in one run.
        .executableTarget(
            name: "HTTPBenchmark",
            dependencies: [
                "BenchmarkSupport", "ChildProcess", "LoopbackHTTP", "Redis", "RedisSupervisor", "RevokeCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/HTTPBenchmark",
            swiftSettings: swiftSettings
        ),
        // `make bench`: /v1/forward-auth against the check, and nginx's auth_request recipe.
        .executableTarget(
            name: "GatewayBenchmark",
            dependencies: [
                "BenchmarkSupport", "ChildProcess", "LoopbackHTTP", "RedisSupervisor", "RevokeCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Benchmarks/GatewayBenchmark",
            swiftSettings: swiftSettings
        ),
        // Hummingbird alone, for HTTPBenchmark to measure beside revoked.
        .executableTarget(
            name: "HummingbirdFloor",
            dependencies: [
                "EventLoopExecutor",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/HummingbirdFloor",
            swiftSettings: swiftSettings
        ),
        // `make soak`: revoked at 80% of its measured maximum, with revocations and open
        // streams, for ten minutes: errors, p99 per minute, resident memory.
        .executableTarget(
            name: "SoakBenchmark",
            dependencies: ["BenchmarkSupport", "ChildProcess", "RedisSupervisor"],
            path: "Benchmarks/SoakBenchmark",
            swiftSettings: swiftSettings
        ),
        // `make bench`: Redis deployments beyond one server: failover times through Sentinel,
        // writes with and without replicated acknowledgements, checks over TLS and clear text,
        // and the capacity figures of docs/scaling.md.
        .executableTarget(
            name: "HABenchmark",
            dependencies: [
                "BenchmarkSupport", "ChildProcess", "LoopbackHTTP", "Redis", "RedisSupervisor", "RedisTestSupport", "RevokeCore", "RevokeSnapshot",
                "RevokeStore",
            ],
            path: "Benchmarks/HABenchmark",
            swiftSettings: swiftSettings
        ),
        // `make bench`: throughput of the Redis layer against redis-benchmark.
        .executableTarget(
            name: "RedisBenchmark",
            dependencies: ["EventLoopExecutor", "Redis", "RedisSupervisor", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Benchmarks/RedisBenchmark",
            swiftSettings: swiftSettings
        ),
    ]
)

// `make fuzz` (REVOKE_FUZZ=1): libFuzzer targets for every parser that takes outside bytes,
// built with -sanitize=fuzzer,address; libFuzzer brings the main.
if Context.environment["REVOKE_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "RevokeFuzz",
            dependencies: ["Redis", "RevokeCore", "RevokeSnapshot"],
            path: "Fuzz/RevokeFuzz",
            swiftSettings: swiftSettings
        ))
}
