import Logging

/// `StreamLogHandler`'s lines on standard error, with the metadata formatted only when a line is
/// written. `StreamLogHandler` formats its whole metadata again each time an entry is set, and
/// Hummingbird sets the request ID on every request's logger: at `REVOKE_LOG_LEVEL=error` that
/// formatting was a few percent of a check's time, for lines never written.
struct LineLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata = Logger.Metadata()
    var metadataProvider: Logger.MetadataProvider?
    /// Writes the lines; its own metadata stays empty.
    private var stream: StreamLogHandler

    init(label: String) {
        stream = StreamLogHandler.standardError(label: label, metadataProvider: nil)
        metadataProvider = LoggingSystem.metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        var event = event
        event.metadata = merged
        stream.log(event: event)
    }
}
