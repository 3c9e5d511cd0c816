"""zWMS: an all-in-one mail server (SMTP, POP3, webmail, admin) on Twisted."""

__version__ = "0.1.0"
