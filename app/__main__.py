"""`python -m app` is the operator CLI."""

from app.cli import main

main()
