"""A secured single-node OpenSearch: its security plugin on, certificates made here, one admin user.

For tests of what a caller may see through dsr: the cluster authenticates every request (HTTP basic
auth against its internal users) and decides what each user may read, down to documents. The
plugin insists on TLS between nodes, so a throw-away CA and node certificate are made with the
`openssl` command in the node's own config folder; HTTP stays plain (on loopback), so clients need
no CA. The security index is initialised from the config folder at first start with the admin user
only (bcrypt hash made by the plugin's own `hash.sh`); further users and roles are created through
the plugin's REST API with the admin's credentials (`SecuredNode.put_role`, `put_user`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsr.engines.distribution import java_home
from dsr.errors import EngineStartError

ADMIN_USER = "admin"
NODE_DN = "CN=dsr-node,O=dsr-test"
SECURITY_CONFIG = "opensearch-security"  # the plugin's folder in the node's config folder


@dataclass(frozen=True)
class Security:
    """The security of a node to start: the admin's password (the admin may do anything)."""

    admin_password: str

    @property
    def admin_auth(self) -> tuple[str, str]:
        return ADMIN_USER, self.admin_password

    def settings(self) -> dict[str, str]:
        """The node settings (`-E`) that turn the plugin on with the files `prepare` writes."""
        return {
            "plugins.security.ssl.transport.pemcert_filepath": "node.pem",
            "plugins.security.ssl.transport.pemkey_filepath": "node-key.pem",
            "plugins.security.ssl.transport.pemtrustedcas_filepath": "root-ca.pem",
            "plugins.security.ssl.transport.enforce_hostname_verification": "false",
            "plugins.security.ssl.http.enabled": "false",
            "plugins.security.allow_default_init_securityindex": "true",
            "plugins.security.nodes_dn": NODE_DN,
            "plugins.security.restapi.roles_enabled": "all_access",
            "plugins.security.audit.type": "noop",
        }

    def prepare(self, home: Path, config: Path) -> None:
        """Write the certificates and the plugin's initial users and role mapping into `config`."""
        _make_certificates(config)
        folder = config / SECURITY_CONFIG
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "internal_users.yml").write_text(
            '_meta:\n  type: "internalusers"\n  config_version: 2\n'
            f'{ADMIN_USER}:\n  hash: "{_bcrypt(home, self.admin_password)}"\n  reserved: true\n'
            '  backend_roles: ["admin"]\n')
        (folder / "roles_mapping.yml").write_text(
            '_meta:\n  type: "rolesmapping"\n  config_version: 2\n'
            'all_access:\n  reserved: false\n  backend_roles: ["admin"]\n')


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EngineStartError(f"cannot run {cmd[0]}: {e}") from None
    if proc.returncode != 0:
        raise EngineStartError(f"{' '.join(cmd[:3])} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def _make_certificates(config: Path) -> None:
    """A CA and a node certificate signed by it (PEM, key in PKCS#8), valid for a month."""
    (config / "node-ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root-ca-key.pem",
          "-out", "root-ca.pem", "-days", "30", "-subj", "/O=dsr-test/CN=dsr-test-root"], config)
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node-key.pem", "-out", "node.csr",
          "-subj", "/O=dsr-test/CN=dsr-node"], config)
    _run(["openssl", "x509", "-req", "-in", "node.csr", "-CA", "root-ca.pem", "-CAkey", "root-ca-key.pem",
          "-CAcreateserial", "-out", "node.pem", "-days", "30", "-extfile", "node-ext.cnf"], config)


def _bcrypt(home: Path, password: str) -> str:
    """The password's bcrypt hash, as the plugin's `hash.sh` makes it."""
    tool = home / "plugins" / "opensearch-security" / "tools" / "hash.sh"
    env = {**os.environ}
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = env["OPENSEARCH_JAVA_HOME"] = jh
    out = _run(["bash", str(tool), "-p", password], home, env)
    hashes = [line.strip() for line in out.splitlines() if line.strip().startswith("$2")]
    if not hashes:
        raise EngineStartError(f"{tool} printed no bcrypt hash: {out.strip()[-300:]}")
    return hashes[-1]


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class SecuredNode:
    """A running secured node's URL and admin, and the plugin's REST API to give users their rights."""

    url: str
    security: Security

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """A request as the admin; the answer's JSON (an error answer raises `EngineStartError`)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": basic_auth_header(*self.security.admin_auth), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise EngineStartError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')[:500]}") from None

    def put_role(self, name: str, index_permissions: list[dict[str, Any]]) -> None:
        """A role: `[{"index_patterns": [...], "allowed_actions": ["read"], "dls": "{...}"}]`."""
        self.request("PUT", f"/_plugins/_security/api/roles/{name}", {
            "cluster_permissions": ["cluster_composite_ops_ro"], "index_permissions": index_permissions})

    def put_user(self, name: str, password: str, roles: list[str]) -> None:
        self.request("PUT", f"/_plugins/_security/api/internalusers/{name}",
                     {"password": password, "opendistro_security_roles": roles})
