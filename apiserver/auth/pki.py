"""The cluster PKI: one CA, the API server's serving certificate, and client certificates
whose subject is the identity (CN = user name, O = groups), as in Kubernetes.

    <data_dir>/pki/ca.crt  ca.key                       the cluster CA (10 years)
                   apiserver.crt  apiserver.key         serving cert, SANs = addresses and names
                   admin.crt  admin.key                 CN=kubernetes-admin, O=system:masters
                   scheduler.crt  scheduler.key         CN=system:kube-scheduler
                   controller-manager.crt/.key          CN=system:kube-controller-manager
                   apiserver-kubelet-client.crt/.key    the API server's identity towards kubelets

A node's kubelet serves logs and exec over TLS with a certificate this CA signs for it
(`sign_kubelet_serving`: CN=system:node:NAME, SANs = its addresses and name only), and
accepts only clients whose certificate this CA signed for the API server
(`kubelet_server_ssl_context`, plus a CN check in the kubelet).

Invariants:

* Every key and certificate file is written 0600 in a 0700 directory (`files.write_private`);
  keys never leave this module except as PEM written to those files or handed to `ssl`.
* Idempotent: an existing CA is always reused (a CA with only one of its two files is an
  error, never silently replaced: that would orphan every credential it signed). A leaf is
  reused while it is signed by this CA, names the same identity (or covers the requested
  SANs), and is valid for at least `RENEW_BEFORE` more; otherwise it is re-issued with its
  existing key.
* Client certificates carry `clientAuth` only and the serving certificate `serverAuth` only,
  so that one cannot stand in for the other (OpenSSL checks the purpose on handshake).
* `not_before` is back-dated by `CLOCK_SKEW` so that nodes whose clock lags slightly can
  use a certificate issued a moment ago.

Keys are ECDSA P-256: fast to generate (tests create many) and accepted by every client that
matters here (Go's crypto/tls in kubectl, OpenSSL in Python).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.auth.files import private_dir, write_private

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
CLOCK_SKEW = dt.timedelta(minutes=5)

MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"

# Names every Kubernetes API server certificate carries, so in-cluster habits keep working.
DEFAULT_DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
DEFAULT_IPS = ("127.0.0.1", "::1")


class PKIError(Exception):
    """The PKI on disk is inconsistent, or a certificate or CSR is not acceptable."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a certificate speaks for: CN is the user, each O a group."""

    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("kubernetes-admin", (MASTERS_GROUP,))
SCHEDULER = Identity("system:kube-scheduler")
CONTROLLER_MANAGER = Identity("system:kube-controller-manager")
DNS = Identity("system:kube-dns")
# The API server's client identity when it calls a kubelet (logs, exec): kubelets accept only it.
APISERVER_KUBELET_CLIENT = Identity("kube-apiserver-kubelet-client", (MASTERS_GROUP,))


def node_identity(node_name: str) -> Identity:
    return Identity(f"{NODE_USER_PREFIX}{node_name}", (NODES_GROUP,))


PrivateKey = ec.EllipticCurvePrivateKey


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError("only ECDSA keys are used by kubelite's PKI")
    return key


def identity_of(cert: x509.Certificate) -> Identity:
    """The identity a (verified) client certificate names: CN = user, O = groups."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not str(cns[0].value):
        raise PKIError("a client certificate must carry exactly one non-empty common name")
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return Identity(str(cns[0].value), groups)


def _subject(identity: Identity) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in identity.groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, identity.user))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: PrivateKey

    @classmethod
    def create(cls, *, common_name: str = "kubelite-ca", now: dt.datetime | None = None) -> CertificateAuthority:
        key = new_key()
        start = (now or _now()) - CLOCK_SKEW
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    def _leaf(self, public_key: ec.EllipticCurvePublicKey, subject: x509.Name, usage: x509.ObjectIdentifier,
              *, sans: list[x509.GeneralName] | None = None, validity: dt.timedelta = LEAF_VALIDITY,
              now: dt.datetime | None = None) -> x509.Certificate:
        start = (now or _now()) - CLOCK_SKEW
        end = min(start + validity, self.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def sign_client(self, public_key: ec.EllipticCurvePublicKey, identity: Identity, *,
                    validity: dt.timedelta = LEAF_VALIDITY, now: dt.datetime | None = None) -> x509.Certificate:
        """A client certificate for `identity`: whoever holds the key is that user."""
        if not identity.user:
            raise PKIError("a client certificate needs a user name")
        return self._leaf(public_key, _subject(identity), ExtendedKeyUsageOID.CLIENT_AUTH, validity=validity,
                          now=now)

    def sign_server(self, public_key: ec.EllipticCurvePublicKey, *, ips: Iterable[str], dns_names: Iterable[str],
                    common_name: str = "kube-apiserver", now: dt.datetime | None = None) -> x509.Certificate:
        sans = server_sans(ips, dns_names)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self._leaf(public_key, subject, ExtendedKeyUsageOID.SERVER_AUTH, sans=sans, now=now)

    def sign_kubelet_serving(self, public_key: ec.EllipticCurvePublicKey, node_name: str, *,
                             ips: Iterable[str], now: dt.datetime | None = None) -> x509.Certificate:
        """A kubelet's serving certificate: valid for that node's name and addresses, nothing else
        (no loopback or `kubernetes` defaults: a node must not be able to pose as another host)."""
        sans: list[x509.GeneralName] = [x509.DNSName(node_name)]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ips)]
        return self._leaf(public_key, _subject(node_identity(node_name)), ExtendedKeyUsageOID.SERVER_AUTH,
                          sans=sans, now=now)

    def issued(self, cert: x509.Certificate) -> bool:
        """Whether `cert` carries this CA's signature."""
        return issued_by(cert, self.cert)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` (a CA certificate) signed `cert`."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def server_sans(ips: Iterable[str], dns_names: Iterable[str]) -> list[x509.GeneralName]:
    """The SANs of a serving certificate: the given names and addresses plus the defaults."""
    names: list[x509.GeneralName] = []
    for dns in dict.fromkeys([*DEFAULT_DNS_NAMES, *dns_names]):
        names.append(x509.DNSName(dns))
    for ip in dict.fromkeys(str(ipaddress.ip_address(a)) for a in [*DEFAULT_IPS, *ips]):
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    return names


def _sans_of(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


@dataclass(frozen=True, slots=True)
class CertPaths:
    cert: Path
    key: Path


class ClusterPKI:
    """The PKI files under `<data_dir>/pki`, created on first use and reused afterwards."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "pki"
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"

    def paths(self, name: str) -> CertPaths:
        return CertPaths(self.dir / f"{name}.crt", self.dir / f"{name}.key")

    @property
    def server(self) -> CertPaths:
        return self.paths("apiserver")

    def ensure_ca(self) -> CertificateAuthority:
        have = (self.ca_cert.exists(), self.ca_key.exists())
        if all(have):
            return self.load_ca()
        if any(have):
            missing = self.ca_key if have[0] else self.ca_cert
            raise PKIError(f"the cluster CA is incomplete: {missing} is missing; restore it from a backup "
                           "(replacing the CA would invalidate every certificate it signed)")
        private_dir(self.dir)
        ca = CertificateAuthority.create()
        write_private(self.ca_key, key_pem(ca.key))
        write_private(self.ca_cert, ca.cert_pem)
        return ca

    def load_ca(self) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = load_key(self.ca_key.read_bytes())
        if cert.public_key() != key.public_key():
            raise PKIError(f"{self.ca_key} does not belong to {self.ca_cert}")
        return CertificateAuthority(cert, key)

    def _existing(self, paths: CertPaths, ca: CertificateAuthority
                  ) -> tuple[x509.Certificate | None, PrivateKey | None]:
        """The leaf at `paths` if its key matches and this CA signed it and it is not due for renewal."""
        key = load_key(paths.key.read_bytes()) if paths.key.exists() else None
        if key is None or not paths.cert.exists():
            return None, key
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        fresh = cert.not_valid_after_utc - _now() > RENEW_BEFORE
        if cert.public_key() != key.public_key() or not ca.issued(cert) or not fresh:
            return None, key
        return cert, key

    def ensure_server_cert(self, ca: CertificateAuthority, *, ips: Iterable[str] = (),
                           dns_names: Iterable[str] = ()) -> CertPaths:
        """The serving certificate, re-issued (same key) if it lacks any of the requested SANs."""
        ips, dns_names = list(ips), list(dns_names)
        paths = self.server
        cert, key = self._existing(paths, ca)
        if cert is not None and set(server_sans(ips, dns_names)) <= _sans_of(cert):
            return paths
        if cert is not None:  # keep the names it already had: other clients may rely on them
            for san in _sans_of(cert):
                if isinstance(san, x509.IPAddress):
                    ips.append(str(san.value))
                elif isinstance(san, x509.DNSName):
                    dns_names.append(san.value)
        key = key or new_key()
        write_private(paths.key, key_pem(key))
        write_private(paths.cert, cert_pem(ca.sign_server(key.public_key(), ips=ips, dns_names=dns_names)))
        return paths

    def ensure_client_cert(self, ca: CertificateAuthority, name: str, identity: Identity) -> CertPaths:
        """A client certificate for `identity` stored as `<name>.crt` / `<name>.key`."""
        paths = self.paths(name)
        cert, key = self._existing(paths, ca)
        if cert is not None and identity_of(cert) == identity:
            return paths
        key = key or new_key()
        write_private(paths.key, key_pem(key))
        write_private(paths.cert, cert_pem(ca.sign_client(key.public_key(), identity)))
        return paths


def sign_csr(ca: CertificateAuthority, csr_pem: bytes, identity: Identity) -> x509.Certificate:
    """Sign the public key of a CSR for `identity`, whatever subject the CSR asked for.

    The CSR only proves possession of its key; the identity comes from the caller's
    authorization (the join token), never from the request.
    """
    return ca.sign_client(csr_public_key(csr_pem), identity)


def csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The key of a CSR whose signature verifies (it proves possession); nothing else of it is used."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as err:
        raise PKIError(f"the certificate signing request is not a PEM CSR: {err}") from err
    if not csr.is_signature_valid:
        raise PKIError("the certificate signing request's signature does not verify")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in (
            "secp256r1", "secp384r1"):
        raise PKIError("the certificate signing request must carry an ECDSA P-256 or P-384 key")
    return public_key


def make_csr(key: PrivateKey, identity: Identity) -> bytes:
    csr = x509.CertificateSigningRequestBuilder().subject_name(_subject(identity)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def server_ssl_context(pki: ClusterPKI) -> ssl.SSLContext:
    """TLS for the API server: its certificate, and client certificates verified against the CA.

    Client certificates are optional at the TLS layer (bearer tokens and anonymous health
    checks need no certificate); one that is presented must chain to the cluster CA and be
    meant for client authentication, or the handshake fails.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server.cert, pki.server.key)
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def kubelet_server_ssl_context(cert: CertPaths, client_ca: Path) -> ssl.SSLContext:
    """TLS for a kubelet's logs/exec server: its serving certificate, and a client certificate
    signed by the cluster CA required on every connection (the kubelet then checks that the
    certificate names the API server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert.cert, cert.key)
    ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl_context(ca_cert: Path | bytes, cert: CertPaths | None = None) -> ssl.SSLContext:
    """TLS for a client of the API server: trust only the cluster CA, present `cert` if given."""
    cadata = ca_cert.decode() if isinstance(ca_cert, bytes) else ca_cert.read_text()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=cadata)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx
