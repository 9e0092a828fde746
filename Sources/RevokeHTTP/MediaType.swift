/// The media types Revoke's API speaks, written once.
public enum MediaType {
    /// What a JSON request body must be (a `charset` parameter is allowed).
    public static let json = "application/json"
    /// The `Content-Type` of every JSON answer.
    public static let jsonAnswer = "application/json; charset=utf-8"
    /// A form body (`/oauth2/*`, `/v1/backchannel-logout`).
    public static let form = "application/x-www-form-urlencoded"
}
