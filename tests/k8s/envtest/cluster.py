"""Test support: run a real etcd + kube-apiserver on loopback, as controller-runtime's envtest does.

Not product code. Binaries come from ``build.sh`` (built from the Go module proxy and cached,
or taken from ``KUMOHUB_ENVTEST_BIN``). Everything binds to 127.0.0.1 only: etcd on two free
ports, kube-apiserver on one, with generated certificates:

* a CA that signs the serving certificate and all client certificates (``--client-ca-file``),
* an admin client certificate (CN ``kumohub-admin``, O ``system:masters``) and an admin token,
* a service-account signing key (``--service-account-*``),
* a self-contained kubeconfig (``cluster.kubeconfig``) using the admin client certificate.

Authorization is ``RBAC`` (plus ``Node``), so unauthenticated requests get 401/403 except the
public info endpoints. There is no scheduler, controller-manager or kubelet: see
``fake_kubelet.py``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
LOOPBACK = "127.0.0.1"
# Service IPs are only allocated, never routed (no kube-proxy); a documentation range that
# is neither loopback nor 10.x.
SERVICE_CLUSTER_IP_RANGE = "198.18.0.0/24"


class EnvtestError(RuntimeError):
    """The binaries could not be built or the control plane did not come up."""


# --------------------------------------------------------------------------------------
# binaries
# --------------------------------------------------------------------------------------


def build_binaries(timeout: float = 3 * 3600) -> Path:
    """Run build.sh (instant when cached) and return the directory holding the binaries.

    Raises EnvtestError with the build's output on failure; callers must not turn this into
    a skip.
    """
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise EnvtestError(
            f"{BUILD_SCRIPT} failed (exit {proc.returncode}).\n"
            f"--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-20000:]}"
        )
    bin_dir = Path(lines[-1])
    for name in ("kube-apiserver", "etcd"):
        if not os.access(bin_dir / name, os.X_OK):
            raise EnvtestError(f"{BUILD_SCRIPT} reported {bin_dir} but {name} is missing there")
    return bin_dir


# --------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _CA:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kumohub-envtest-ca")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        common_name: str,
        *,
        organizations: tuple[str, ...] = (),
        server: bool = False,
        dns_names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_cert(cert), _pem_key(key)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# resolved here, in the parent: the child must not import or load anything between fork
# and exec (other threads may hold the import lock at fork time)
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def set_pdeathsig() -> None:
    """preexec_fn: the child gets SIGKILL when the thread that forked it dies (Linux), so
    nothing outlives a test process that is itself killed. Only use it from a thread that
    lives as long as the child should."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, _SIGKILL)


def stop_process_group(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), then SIGKILL."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if proc.poll() is None and pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)


@dataclass(frozen=True)
class ClientCredentials:
    """A client certificate for one user, as files, plus a kubeconfig using it."""

    user: str
    groups: tuple[str, ...]
    cert_file: Path
    key_file: Path
    kubeconfig: Path


# --------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------


class EnvtestCluster:
    """etcd + kube-apiserver on 127.0.0.1; use as a context manager or call start()/stop().

    Attributes after start():
      server        ``https://127.0.0.1:<port>``
      kubeconfig    Path of a self-contained kubeconfig (admin client certificate)
      ca_file       CA bundle that signs the serving cert and all client certs
      admin         ClientCredentials of the ``system:masters`` admin
      admin_token   bearer token of the same admin (static token file)
      env           {"KUBECONFIG": ...} for clients that load a kubeconfig
      bin_dir, base_dir, etcd_url, service_account_issuer
    """

    ADMIN_USER = "kumohub-admin"

    def __init__(
        self,
        base_dir: str | os.PathLike | None = None,
        bin_dir: str | os.PathLike | None = None,
        start_timeout: float = 90.0,
        extra_apiserver_args: tuple[str, ...] = (),
    ) -> None:
        self._own_base_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="kumohub-envtest-"))
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.start_timeout = start_timeout
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None
        self._ca: _CA | None = None
        self._log_files: list = []
        self.server = ""
        self.etcd_url = ""
        self.kubeconfig = self.base_dir / "kubeconfig"
        self.ca_file = self.base_dir / "pki" / "ca.crt"
        self.admin: ClientCredentials | None = None
        self.admin_token = ""
        self.service_account_issuer = ""

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> EnvtestCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> EnvtestCluster:
        if self.bin_dir is None:
            self.bin_dir = build_binaries()
        atexit.register(self.stop)
        try:
            self._write_pki()
            self._start_etcd()
            self._start_apiserver()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process_group(self._apiserver)
        self._apiserver = None
        stop_process_group(self._etcd)
        self._etcd = None
        for f in self._log_files:
            with contextlib.suppress(Exception):
                f.close()
        self._log_files = []
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self._own_base_dir:  # a temp dir we made (error messages carry the log tails)
            shutil.rmtree(self.base_dir, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients that read a kubeconfig (e.g. KubeSpawner outside a pod)."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    # -- credentials ---------------------------------------------------------------------

    def client_credentials(
        self, user: str, groups: tuple[str, ...] | list[str] = ()
    ) -> ClientCredentials:
        """Issue a client certificate for ``user`` (RBAC decides what it may do)."""
        assert self._ca is not None, "cluster not started"
        groups = tuple(groups)
        pki = self.base_dir / "pki"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        cert, key = self._ca.issue(user, organizations=groups)
        cert_file, key_file = pki / f"user-{safe}.crt", pki / f"user-{safe}.key"
        cert_file.write_bytes(cert)
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        kubeconfig = self.base_dir / f"kubeconfig-{safe}"
        self._write_kubeconfig(kubeconfig, user, cert, key)
        return ClientCredentials(user, groups, cert_file, key_file, kubeconfig)

    def client_configuration(self, creds: ClientCredentials | None = None):
        """A kubernetes_asyncio ``Configuration`` for the admin (or ``creds``); no I/O."""
        from kubernetes_asyncio.client import Configuration

        creds = creds or self.admin
        assert creds is not None, "cluster not started"
        cfg = Configuration(host=self.server)
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.cert_file = str(creds.cert_file)
        cfg.key_file = str(creds.key_file)
        cfg.verify_ssl = True
        return cfg

    def ssl_context(
        self, creds: ClientCredentials | None = None, *, anonymous: bool = False
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if not anonymous:
            creds = creds or self.admin
            assert creds is not None
            ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
        return ctx

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: dict | None = None,
        creds: ClientCredentials | None = None,
        anonymous: bool = False,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict | str]:
        """Plain HTTPS request to the API server (no client library); returns (status, body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        ctx = self.ssl_context(creds, anonymous=anonymous or bool(token))
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                status, raw = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    # -- internals -----------------------------------------------------------------------

    def _write_kubeconfig(self, path: Path, user: str, cert: bytes, key: bytes) -> None:
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kumohub-envtest",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self.ca_file.read_bytes()),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
                }
            ],
            "contexts": [
                {"name": "kumohub-envtest", "context": {"cluster": "kumohub-envtest", "user": user}}
            ],
            "current-context": "kumohub-envtest",
            "preferences": {},
        }
        # JSON is valid YAML; avoids a YAML dependency here.
        path.write_text(json.dumps(cfg, indent=2))
        path.chmod(0o600)

    def _write_pki(self) -> None:
        pki = self.base_dir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        self._ca = ca = _CA()
        self.ca_file.write_bytes(_pem_cert(ca.cert))
        serving_cert, serving_key = ca.issue(
            "kube-apiserver",
            server=True,
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=(LOOPBACK,),
        )
        (pki / "apiserver.crt").write_bytes(serving_cert)
        (pki / "apiserver.key").write_bytes(serving_key)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(_pem_key(sa_key))
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.admin_token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        (pki / "tokens.csv").write_text(
            f'{self.admin_token},{self.ADMIN_USER}-token,kumohub-admin-token,"system:masters"\n'
        )
        for p in ("apiserver.key", "sa.key", "tokens.csv"):
            (pki / p).chmod(0o600)

    def _popen(self, argv: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.base_dir / log_name, "ab")  # noqa: SIM115 - closed in stop()
        self._log_files.append(log)
        main_thread = threading.current_thread() is threading.main_thread()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base_dir,
            start_new_session=True,
            # die with the test process even if it is SIGKILLed (only safe from the main
            # thread: PDEATHSIG fires when the forking *thread* exits)
            preexec_fn=set_pdeathsig if main_thread else None,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir)},
        )

    def _log_tail(self, log_name: str, n: int = 60) -> str:
        try:
            lines = (self.base_dir / log_name).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def _start_etcd(self) -> None:
        assert self.bin_dir is not None
        data = self.base_dir / "etcd-data"
        data.mkdir(exist_ok=True)
        client_port, peer_port = _free_port(), _free_port()
        self.etcd_url = f"http://{LOOPBACK}:{client_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        self._etcd = self._popen(
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={data}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            "etcd.log",
        )

    def _start_apiserver(self) -> None:
        assert self.bin_dir is not None
        pki = self.base_dir / "pki"
        port = _free_port()
        self.server = f"https://{LOOPBACK}:{port}"
        self.service_account_issuer = f"https://{LOOPBACK}:{port}"
        args = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            f"--advertise-address={LOOPBACK}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            f"--service-account-issuer={self.service_account_issuer}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--profiling=false",
            "--v=1",
            *self.extra_apiserver_args,
        ]
        self._apiserver = self._popen(args, "kube-apiserver.log")
        # admin credentials + kubeconfig (needs self.server)
        self.admin = self.client_credentials(self.ADMIN_USER, ("system:masters",))
        self.kubeconfig = self.base_dir / "kubeconfig"
        self.kubeconfig.write_bytes(self.admin.kubeconfig.read_bytes())
        self.kubeconfig.chmod(0o600)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self._etcd), ("kube-apiserver", self._apiserver)):
                if proc is not None and proc.poll() is not None:
                    raise EnvtestError(
                        f"{name} exited with {proc.returncode} during start-up; log tail:\n"
                        + self._log_tail(f"{name}.log")
                    )
            try:
                status, body = self.request("/readyz", timeout=3)
                if status == 200:
                    return
                last = f"{status}: {body}"
            except (OSError, ssl.SSLError) as e:
                last = repr(e)
            time.sleep(0.25)
        raise EnvtestError(
            f"kube-apiserver not ready after {self.start_timeout}s (last: {last[-2000:]});\n"
            f"--- kube-apiserver.log ---\n{self._log_tail('kube-apiserver.log')}\n"
            f"--- etcd.log ---\n{self._log_tail('etcd.log')}"
        )
