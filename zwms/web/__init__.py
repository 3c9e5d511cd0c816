"""The web front end (Klein + Jinja2)."""
