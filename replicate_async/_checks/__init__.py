"""Rules for what callers and models hand us: ids and paths, durations and options,
client configuration, request bodies, model schemas."""
