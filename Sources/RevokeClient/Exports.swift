// The domain types a verifier names come with this library: `import RevokeClient` is enough to
// build a query (`CheckQuery`) and to catch why one could not be built (`ValidationError`).
@_exported import struct RevokeCore.CheckQuery
@_exported import struct RevokeCore.ValidationError
