"""A client of comfy-sweep's HTTP API, for the command line and for scripts: where to find the
API and the key, the requests, and following a sweep until it ends. It imports nothing of the
service's own modules, so it talks to the API only through its wire format."""
