"""Where blobs live: the content-addressed blob store (local directory, HTTP server, HTTP
client) and the spec store that fetches and caches job specs by hash."""
