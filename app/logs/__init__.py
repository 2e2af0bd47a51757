"""Logging for every process of the service: one setup, one JSON or text line per record, and
the context (request, team, sweep, run) bound where a request or a task starts."""
