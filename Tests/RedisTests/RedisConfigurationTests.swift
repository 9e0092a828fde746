import Redis
import Testing

@Suite struct RedisConfigurationTests {
    @Test func parsesEveryPart() throws {
        let configuration = try RedisConfiguration(url: "redis://:s3cr%40t@redis.internal:6380/4")
        #expect(configuration.host == "redis.internal")
        #expect(configuration.port == 6380)
        #expect(configuration.username == nil)
        #expect(configuration.password == "s3cr@t")
        #expect(configuration.database == 4)
    }

    @Test func appliesDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.port == 6379)
        #expect(configuration.password == nil)
        #expect(configuration.database == 0)
    }

    @Test func readsUserAndIPv6() throws {
        let configuration = try RedisConfiguration(url: "redis://ops:pw@[::1]:7000")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7000)
        #expect(configuration.username == "ops")
        #expect(configuration.password == "pw")
    }

    @Test func neverShowsThePassword() throws {
        let configuration = try RedisConfiguration(url: "redis://:hunter2@h:1/0")
        #expect(!"\(configuration)".contains("hunter2"))
    }

    @Test(arguments: [
        "http://localhost", "redis://", "redis://host:0", "redis://host:70000", "redis://host:port",
        "redis://host/-1", "redis://host/db", "redis://[::1", "redis://:%zz@host",
    ])
    func refusesBadURLs(_ url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        do {
            _ = try RedisConfiguration(url: url)
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix("invalid Redis URL"))
        }
    }
}
