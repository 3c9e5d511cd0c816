# -*- test-case-name: tests.test_tls -*-
"""
The server's TLS certificate: data/tls/server.pem (certificate + key, PEM).
When none is there at first start, a self-signed one is made (SPEC S1) with
the `cryptography` package (already a dependency of Twisted's TLS).
An administrator replaces the file with a real certificate and restarts.
"""

import datetime
import os

from zwms.fileio import atomic_write

CERT_FILE = "server.pem"


def make_self_signed(hostname, days=3650):
    """@return: PEM bytes holding a new key and a self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname or "localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def ensure_certificate(tls_dir, hostname):
    """
    Return the path of the home's certificate file, making a self-signed one
    when there is none.
    """
    path = os.path.join(tls_dir, CERT_FILE)
    if not os.path.exists(path):
        os.makedirs(tls_dir, exist_ok=True)
        atomic_write(path, make_self_signed(hostname))
        os.chmod(path, 0o600)
    return path


def server_context(pem_path):
    """A Twisted server context factory (TLS 1.2+) from a PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from twisted.internet import ssl
    with open(pem_path, "rb") as f:
        pem = f.read()
    # cryptography objects: pyOpenSSL has deprecated its own PKey type.
    key = serialization.load_pem_private_key(pem, password=None)
    certs = x509.load_pem_x509_certificates(pem)
    return ssl.CertificateOptions(privateKey=key, certificate=certs[0],
                                  extraCertChain=certs[1:],
                                  raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
