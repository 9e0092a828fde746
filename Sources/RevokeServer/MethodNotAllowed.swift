import HTTPTypes
import Hummingbird
import RevokeHTTP

extension Router {
    /// Answers, on every path the router serves, each method the path does not serve with
    /// 405 and `Allow` (instead of Hummingbird's 404). Call it once, after every route is added:
    /// a route added later is covered only if this runs again.
    func refuseUnservedMethods() {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!]
        var served: [String: (path: RouterPath, methods: [HTTPRequest.Method])] = [:]
        for route in routes {
            served[route.path.description, default: (route.path, [])].methods.append(route.method)
        }
        for (path, allowed) in served.values {
            let allowed = methods.filter(allowed.contains)
            // HEAD goes with GET.
            for method in methods where !allowed.contains(method) && !(method == .head && allowed.contains(.get)) {
                on(path, method: method) { _, _ -> Response in
                    throw APIError.methodNotAllowed(method, allowed: allowed)
                }
            }
        }
    }
}
