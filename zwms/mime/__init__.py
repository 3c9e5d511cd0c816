"""
Mail as the webmail reads and writes it: charsets (charsets.py), parsing
(parse.py) and composing (compose.py).
"""
