"""The request path: one send, retries, the rate limiter, errors, decoding, options
and the server-sent-events transport."""
