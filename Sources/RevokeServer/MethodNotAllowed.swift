import HTTPTypes
import Hummingbird
import RevokeHTTP

extension Router {
    /// Answers a request for a path the router serves, with a method the path does not serve
    /// (any method, known to HTTP or not), with 405 and `Allow` instead of Hummingbird's 404.
    /// Call it once, after every route is added: it reads the routes as they are then.
    func refuseUnservedMethods() {
        var served: [(path: RouterPath, methods: [HTTPRequest.Method])] = []
        for route in routes {
            if let index = served.firstIndex(where: { $0.path == route.path }) {
                served[index].methods.append(route.method)
            } else {
                served.append((route.path, [route.method]))
            }
        }
        // Added last, so it wraps only what no route answered: Hummingbird's not-found responder.
        add(middleware: MethodNotAllowedMiddleware(served: served))
    }
}

/// Turns the router's 404 for a served path into 405 with the methods that path serves.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each route's path, with its methods in the order `Allow` lists them.
    let served: [(path: RouterPath, methods: [HTTPRequest.Method])]

    init(served: [(path: RouterPath, methods: [HTTPRequest.Method])]) {
        let order: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace]
        self.served = served.map { path, methods in
            let known = order.filter(methods.contains)
            return (path, known + methods.filter { !order.contains($0) })
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let components = request.uri.path.split(separator: "/")
            guard let allowed = served.first(where: { Self.matches($0.path, components) })?.methods else { throw error }
            throw APIError.methodNotAllowed(request.method, allowed: allowed)
        }
    }

    /// Whether a route's path matches the request's path components, as the router matches
    /// them (`**` takes the rest).
    static func matches(_ path: RouterPath, _ components: [Substring]) -> Bool {
        var index = components.startIndex
        for element in path.components {
            if element.description == "**" { return true }
            guard index < components.endIndex, element ~= components[index] else { return false }
            index += 1
        }
        return index == components.endIndex
    }
}
