"""The optional HTTPS listener (``python -m cloudsim --tls``).

Some clients insist on ``https://`` for STS (the Node credentials provider builds its STS URL
with a fixed scheme), so cloudsim can listen with TLS as well, on a second port, serving the
same state. The certificate is self-signed, generated once into the data directory
(``tls-cert.pem``, ``tls-key.pem`` mode 0600) and reused while it is valid for the host, so a
client told to trust it (``NODE_EXTRA_CA_CERTS``, ``REQUESTS_CA_BUNDLE``, ``ssl.create_default_
context(cafile=...)``) keeps trusting it across restarts.

This is the only cloudsim module that needs a package outside the standard library
(``cryptography``, already pinned for the portal); it is imported only with ``--tls``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"
VALID_DAYS = 825  # the longest validity Apple's TLS clients accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=7)


def _names(host: str) -> list[str]:
    """The names the certificate covers: loopback always, and the listening host."""
    names = ["localhost", "127.0.0.1", "::1"]
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        wildcard = False
    if host and not wildcard and host not in names:
        names.append(host)
    return names


def _san(names: list[str]):
    from cryptography import x509

    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _usable(cert_path: Path, key_path: Path, names: list[str]) -> bool:
    from cryptography import x509

    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        covered = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    return set(_san(names)) <= set(covered)


def ensure_certificate(data_dir: Path, host: str) -> tuple[Path, Path]:
    """The certificate and key for ``host`` in ``data_dir``, generated when missing, expiring
    or not covering the host. Returns (certificate path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    names = _names(host)
    if _usable(cert_path, key_path, names):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudsim local TLS")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(_san(names), critical=False)
        # Self-signed and used as its own trust anchor: a CA certificate that may sign only
        # itself, and a server certificate for the names above.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
