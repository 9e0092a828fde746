import Hummingbird
import Metrics
import RevokeCore
import RevokeHTTP
import RevokeStore

/// `POST /v1/check` and `POST /v1/check/batch` (role verifier).
struct CheckController: Sendable {
    let store: RevocationStore
    let checks: Counter

    func addRoutes(verifier group: some RouterMethods<RevokeRequestContext>) {
        group.post("/v1/check") { request, context -> Response in
            var request = request
            let query = try CheckQuery(json: try await request.jsonObject(context: context), cutoffClaims: store.cutoffClaims)
            let verdict = try await store.check(query)
            checks.increment()
            return jsonResponse(verdict.json)
        }
        group.post("/v1/check/batch") { request, context -> Response in
            var request = request
            let body = try await request.jsonObject(context: context)
            guard case .array(let entries)? = body["checks"] else {
                throw APIError.invalidRequest("checks must be an array of checks")
            }
            guard entries.count <= Limits.maximumChecksPerBatch else {
                throw APIError.invalidRequest("at most \(Limits.maximumChecksPerBatch) checks per batch, not \(entries.count)")
            }
            // Bad entries answer with an error in their place; the others share one round trip.
            var parsed: [Result<CheckQuery, ValidationError>] = []
            for entry in entries {
                guard case .object(let object) = entry else {
                    parsed.append(.failure(ValidationError("a check must be a JSON object")))
                    continue
                }
                parsed.append(Result { () throws(ValidationError) in try CheckQuery(json: object, cutoffClaims: store.cutoffClaims) })
            }
            let queries = parsed.compactMap { try? $0.get() }
            let verdicts = try await store.check(queries)
            // The store answers every query in order; anything else is a failure of ours, not
            // a reason to pair a verdict with the wrong check.
            guard verdicts.count == queries.count else {
                throw StoreError(.failed, "\(verdicts.count) verdicts for \(queries.count) checks")
            }
            checks.increment(by: queries.count)
            var next = verdicts.makeIterator()
            let results: [JSONValue] = parsed.map { result in
                switch result {
                case .success: next.next().map(\.json) ?? APIError.internalError.body
                case .failure(let error): APIError.invalidRequest(error.message).body
                }
            }
            return jsonResponse(.object(["results": .array(results)]))
        }
    }
}
