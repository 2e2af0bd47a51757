"""The client commands of `comfy-sweep`: they talk to a running API over HTTP with a key, as
any script would (`app.client`), unlike the operator's commands in `app.cli`, which open the
database directly."""
