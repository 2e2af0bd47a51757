"""A ComfyUI 0.3.64 stand-in: the real HTTP/WebSocket protocol over simulated model nodes.

It is its own program (`python -m app.standin`) and shares no code with the rest of `app`, so
a misreading of the protocol cannot hide in both our client and this server at once.
"""
