/// An nginx main configuration for a benchmark's own nginx (`nginx -c <file> -p <directory>`):
/// in the foreground, its pid, log and temporary files under `directory`, no access log, and
/// `http` as the body of its `http {}` block.
public func nginxConfiguration(directory: String, workerConnections: Int = 1024, http: String) -> String {
    let temporary = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map { "    \($0)_temp_path \(directory)/nginx-\($0);" }
    return """
        worker_processes auto;
        daemon off;
        pid \(directory)/nginx.pid;
        error_log \(directory)/nginx-error.log;
        events { worker_connections \(workerConnections); }
        http {
            access_log off;
        \(temporary.joined(separator: "\n"))
        \(http)
        }

        """
}
