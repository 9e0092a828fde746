import ChildProcess
import Foundation
import Testing

/// The README's Swift examples are what a verifier outside this repository writes: each builds,
/// as shown, in a package of its own that depends only on this one's products.
@Suite struct ReadmeSnippetsTests {
    static let root = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The README's ```swift blocks, in order.
    static func snippets(in readme: String) -> [[Substring]] {
        var blocks: [[Substring]] = []
        var current: [Substring]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```swift" {
                current = []
            } else if let lines = current, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(lines)
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// One snippet as a file of the package: its imports (`import RevokeClient` for a fragment
    /// that shows none) at the top, the rest, unchanged, as the body of a function.
    static func source(of snippet: [Substring], number: Int) -> String {
        let imports = snippet.filter { $0.hasPrefix("import ") }
        let body = snippet.filter { !$0.hasPrefix("import ") }
        return (imports.isEmpty ? ["import RevokeClient"] : imports.map(String.init)).joined(separator: "\n")
            + "\n\nfunc readmeSnippet\(number)() async throws {\n" + body.joined(separator: "\n") + "\n}\n"
    }

    @Test func theReadmesSwiftExamplesBuildInAPackageOfTheirOwn() async throws {
        let readme = try String(contentsOf: Self.root.appending(path: "README.md"), encoding: .utf8)
        let snippets = Self.snippets(in: readme)
        #expect(snippets.count >= 3, "the README's Swift examples were not found")
        // Under .build (kept out of git), so a second run builds only what changed. The
        // dependency is reached through a directory named `revoke`: a path dependency's
        // package is named by its directory, as `package: "revoke"` in the README says.
        let package = Self.root.appending(path: ".build/readme-snippets")
        let sources = package.appending(path: "Sources/ReadmeSnippets")
        try? FileManager.default.removeItem(at: sources)
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        let link = package.appending(path: "revoke")
        try? FileManager.default.removeItem(at: link)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: Self.root)
        try """
            // swift-tools-version:6.2
            import PackageDescription

            let package = Package(
                name: "readme-snippets",
                platforms: [.macOS(.v15)],
                dependencies: [
                    .package(path: "revoke"),
                    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
                ],
                targets: [
                    .target(
                        name: "ReadmeSnippets",
                        dependencies: [
                            .product(name: "RevokeClient", package: "revoke"),
                            .product(name: "RevokeHummingbird", package: "revoke"),
                            .product(name: "Hummingbird", package: "hummingbird"),
                        ],
                        swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")]
                    )
                ]
            )

            """.write(to: package.appending(path: "Package.swift"), atomically: true, encoding: .utf8)
        // What the examples take as given: a verified token, a verifier key, the application's
        // own signature check.
        try """
            import Hummingbird

            let bearerToken = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJyZWFkbWUifQ.c2lnbmF0dXJl"
            let verifierKey = "verifier-key"

            struct SignatureVerifier: RouterMiddleware {
                typealias Context = BasicRequestContext
                func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
                    try await next(request, context)
                }
            }
            let signatureVerifier = SignatureVerifier()

            """.write(to: sources.appending(path: "Given.swift"), atomically: true, encoding: .utf8)
        for (index, snippet) in snippets.enumerated() {
            try Self.source(of: snippet, number: index + 1)
                .write(to: sources.appending(path: "Snippet\(index + 1).swift"), atomically: true, encoding: .utf8)
        }
        let log = package.appending(path: "build.log").path
        let build = try ChildProcess.spawn(
            "swift", arguments: ["build", "--package-path", package.path], standardOutput: log, standardError: log)
        let status = ChildProcess.exitCode(of: await build.waitUntilExit())
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "the README's examples do not build:\n\(output.suffix(4000))")
    }
}
