"""A client for the OCI distribution API: pull and push images by tag or digest.

Pull: GET the manifest (an index is narrowed to linux/<this arch>), then every
blob the store lacks, each streamed into the store and verified against its
digest before it becomes visible; the manifest itself is checked against the
digest asked for (or the registry's Docker-Content-Digest) and stored byte for
byte, so a pulled image has the registry's digest. Push: for each blob, HEAD
first (skip if present), else try a cross-repository mount when a source
repository is given, else upload it monolithically (POST then PUT ?digest=);
the manifest goes last, so the registry never holds a manifest whose blobs are
missing.

Mirrors (mirrors.py): a pull first tries each mirror of the reference's
registry, in order, and falls through to the next host on any failure, ending
with the registry itself, as containerd does with hosts.toml. Push always goes
where the target reference says.

Transport: https, except plain http for localhost/127.0.0.1/[::1] or when the
caller passes insecure=True; a mirror URL names its own scheme. A 401 with a
Bearer challenge triggers the anonymous token flow (see auth.py), once per
request; tokens are kept per host and repository.
"""

from __future__ import annotations

import asyncio
import platform
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from runtime.images.auth import AuthError, parse_challenge
from runtime.images.digest import digest_bytes, short_id
from runtime.images.errors import ImageError
from runtime.images.layout import LayoutError
from runtime.images.mirrors import Mirrors
from runtime.images.oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    media_type_of,
    parse_index,
)
from runtime.images.reference import Reference, parse_reference
from runtime.images.store import ImageStore

ACCEPT = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST])
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
_PARALLEL_BLOBS = 3


class RegistryError(ImageError):
    """A registry request that failed, or content that did not match its digest."""


@dataclass
class TransferResult:
    """What a pull or push did, blob by blob (digests)."""

    reference: str
    manifest_digest: str = ""
    transferred: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)


def is_plain_http(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return host in LOCAL_HOSTS or registry in LOCAL_HOSTS


class RegistryClient:
    """Pull into and push from an ImageStore. Use as `async with RegistryClient(store) as client`."""

    def __init__(
        self,
        store: ImageStore,
        *,
        insecure: bool = False,
        mirrors: Mirrors | None = None,
        progress: Callable[[str], None] | None = None,
        read_timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.insecure = insecure
        self.mirrors = mirrors or Mirrors()
        self._progress = progress or (lambda _msg: None)
        # No total limit: a large layer on a slow link may take long; a stalled one may not.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, str], str] = {}  # (host, repository) -> bearer token

    async def __aenter__(self) -> RegistryClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # transport

    def _base(self, ref: Reference) -> str:
        scheme = "http" if self.insecure or is_plain_http(ref.registry) else "https"
        return f"{scheme}://{ref.registry}/v2/{ref.repository}"

    async def _request(
        self,
        method: str,
        url: str,
        ref: Reference,
        *,
        scope: str = "pull",
        extra_scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        data: Any = None,
        allow: tuple[int, ...] = (200,),
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with the token flow; returns status, headers, body. Raises on other statuses."""
        assert self._session is not None, "use RegistryClient as an async context manager"
        key = _token_key(url, ref)
        for attempt in (1, 2):
            hdrs = dict(headers or {})
            if key in self._tokens:
                hdrs["Authorization"] = f"Bearer {self._tokens[key]}"
            body = data() if callable(data) else data
            try:
                async with self._session.request(method, url, headers=hdrs, data=body) as resp:
                    payload = await resp.read()
                    status, resp_headers = resp.status, dict(resp.headers)
            except (aiohttp.ClientError, TimeoutError) as err:
                raise RegistryError(f"{method} {url} failed: {err}") from err
            finally:
                if hasattr(body, "close"):
                    body.close()
            if status == 401 and attempt == 1 and "WWW-Authenticate" in resp_headers:
                self._tokens[key] = await self._fetch_token(
                    resp_headers["WWW-Authenticate"], ref, scope, extra_scopes
                )
                continue
            if status in allow:
                return status, resp_headers, payload
            raise RegistryError(f"{method} {url}: {status} {_error_text(payload)}")
        raise RegistryError(f"{method} {url}: unauthorized even with a token")

    async def _fetch_token(
        self, challenge: str, ref: Reference, scope: str, extra_scopes: tuple[str, ...]
    ) -> str:
        assert self._session is not None
        scheme, params = parse_challenge(challenge)
        if scheme != "bearer" or "realm" not in params:
            raise AuthError(
                f"registry {ref.registry} asks for {scheme} authentication; "
                "kubelite supports anonymous bearer tokens only"
            )
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query.append(("scope", params.get("scope") or f"repository:{ref.repository}:{scope}"))
        query.extend(("scope", s) for s in extra_scopes)
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200:
                    raise AuthError(f"token endpoint {params['realm']} answered {resp.status}")
                obj = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise AuthError(f"failed to get a token from {params['realm']}: {err}") from err
        token = obj.get("token") or obj.get("access_token")
        if not isinstance(token, str):
            raise AuthError(f"token endpoint {params['realm']} returned no token")
        return token

    # pull

    async def pull(self, reference: str | Reference) -> TransferResult:
        """Pull an image into the store and tag it locally as the reference names it.

        The reference's mirrors are tried first, in order, then its registry; the error
        of the last host is raised with every earlier host's failure in its message."""
        ref = reference if isinstance(reference, Reference) else parse_reference(reference)
        failures: list[str] = []
        for mirror in self.mirrors.endpoints(ref):
            try:
                result = await self._pull_from(ref, f"{mirror}/v2/{ref.repository}")
            except RegistryError as err:
                failures.append(f"mirror {mirror}: {err}")
                self._progress(f"mirror {mirror} failed ({err}); trying the next host")
                continue
            self._progress(f"Pulled {ref} from mirror {mirror}")
            return result
        try:
            return await self._pull_from(ref, self._base(ref))
        except RegistryError as err:
            tried = "".join(f"{f}; " for f in failures)
            upstream = f"registry {ref.registry}: " if failures else ""
            raise RegistryError(f"failed to pull {ref}: {tried}{upstream}{err}") from err

    async def _pull_from(self, ref: Reference, base: str) -> TransferResult:
        """Pull `ref` from one host; `base` is its repository URL (`scheme://host/v2/<repository>`)."""
        result = TransferResult(str(ref))
        lease = f"pull-{uuid.uuid4().hex[:12]}"
        try:
            data, media_type = await self._get_manifest(ref, base, ref.remote_ref)
            if media_type in INDEX_TYPES:
                chosen = _pick_platform(parse_index(data), ref)
                data, media_type = await self._get_manifest(ref, base, chosen.digest)
            manifest = Manifest.parse(data, media_type=media_type)
            # Lease the blobs before writing them: a concurrent GC must not take them before the tag.
            blobs = [digest_bytes(data), manifest.config.digest, *(d.digest for d in manifest.layers)]
            self.store.lease(lease, None, blobs=blobs)
            sem = asyncio.Semaphore(_PARALLEL_BLOBS)

            async def fetch(desc: Descriptor) -> None:
                async with sem:
                    await self._fetch_blob(ref, base, desc, result)

            await asyncio.gather(*(fetch(d) for d in (manifest.config, *manifest.layers)))
            digest = self.store.layout.put_bytes(data)
            result.manifest_digest = digest
            self.store.set_tag(ref, Descriptor(manifest.media_type, digest, len(data)))
        except (LayoutError, AuthError) as err:
            raise RegistryError(str(err)) from err
        finally:
            self.store.release(lease)
        self._progress(f"Digest: {result.manifest_digest}")
        return result

    async def _get_manifest(self, ref: Reference, base: str, tag_or_digest: str) -> tuple[bytes, str]:
        _, headers, data = await self._request(
            "GET", f"{base}/manifests/{tag_or_digest}", ref, headers={"Accept": ACCEPT}
        )
        actual = digest_bytes(data)
        expected = (
            tag_or_digest if tag_or_digest.startswith("sha256:") else headers.get("Docker-Content-Digest")
        )
        if expected and expected != actual:
            raise RegistryError(f"manifest {tag_or_digest} has digest {actual}, expected {expected}")
        declared = media_type_of(data)
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        media_type = declared or content_type
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            raise RegistryError(f"manifest {tag_or_digest} has unsupported media type {media_type!r}")
        return data, media_type

    async def _fetch_blob(self, ref: Reference, base: str, desc: Descriptor, result: TransferResult) -> None:
        if self.store.layout.has_blob(desc.digest):
            result.skipped.append(desc.digest)
            self._progress(f"{short_id(desc.digest)}: Already exists")
            return
        assert self._session is not None
        url = f"{base}/blobs/{desc.digest}"
        key = _token_key(url, ref)
        for attempt in (1, 2):
            hdrs = {"Authorization": f"Bearer {self._tokens[key]}"} if key in self._tokens else {}
            try:
                async with self._session.get(url, headers=hdrs) as resp:
                    if resp.status == 401 and attempt == 1 and "WWW-Authenticate" in resp.headers:
                        self._tokens[key] = await self._fetch_token(
                            resp.headers["WWW-Authenticate"], ref, "pull", ()
                        )
                        continue
                    if resp.status != 200:
                        raise RegistryError(f"GET {url}: {resp.status} {_error_text(await resp.read())}")
                    # Stream to a staged file; the layout refuses it unless the digest matches.
                    with self.store.layout.writer(expected=desc.digest) as out:
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            out.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as err:
                raise RegistryError(f"GET {url} failed: {err}") from err
            break
        result.transferred.append(desc.digest)
        self._progress(f"{short_id(desc.digest)}: Pull complete")

    # push

    async def push(
        self, source: str | Reference, target: str | Reference | None = None, *, mount_from: str | None = None
    ) -> TransferResult:
        """Push local image `source` to `target` (default: source's own name, which names the registry).

        `mount_from` is a repository on the same registry that may already hold
        the blobs: they are then mounted instead of uploaded.
        """
        src = str(source)
        dst = target if isinstance(target, Reference) else parse_reference(str(target or source))
        result = TransferResult(str(dst))
        try:
            digest = self.store.resolve(src)
            data = self.store.layout.read_blob(digest)
            manifest = Manifest.parse(data)
            for desc in (*manifest.layers, manifest.config):
                await self._push_blob(dst, desc, result, mount_from=mount_from)
            tag = dst.digest or dst.tag_or_latest
            _, headers, _ = await self._request(
                "PUT",
                f"{self._base(dst)}/manifests/{tag}",
                dst,
                scope="pull,push",
                headers={"Content-Type": manifest.media_type},
                data=data,
                allow=(201, 200),
            )
        except (LayoutError, AuthError) as err:
            raise RegistryError(f"failed to push {src} to {dst}: {err}") from err
        except RegistryError as err:
            raise RegistryError(f"failed to push {src} to {dst}: {err}") from err
        remote = headers.get("Docker-Content-Digest")
        if remote and remote != digest:
            raise RegistryError(
                f"failed to push {src}: registry stored the manifest as {remote}, not {digest}"
            )
        result.manifest_digest = digest
        self._progress(f"{dst.tag_or_latest}: digest: {digest} size: {len(data)}")
        return result

    async def _push_blob(
        self, ref: Reference, desc: Descriptor, result: TransferResult, *, mount_from: str | None
    ) -> None:
        base = self._base(ref)
        status, _, _ = await self._request(
            "HEAD", f"{base}/blobs/{desc.digest}", ref, scope="pull,push", allow=(200, 404)
        )
        if status == 200:
            result.skipped.append(desc.digest)
            self._progress(f"{short_id(desc.digest)}: Layer already exists")
            return
        extra = (f"repository:{mount_from}:pull",) if mount_from else ()
        query = f"?mount={desc.digest}&from={urllib.parse.quote(mount_from)}" if mount_from else ""
        status, headers, _ = await self._request(
            "POST",
            f"{base}/blobs/uploads/{query}",
            ref,
            scope="pull,push",
            extra_scopes=extra,
            allow=(201, 202),
        )
        if status == 201:
            result.mounted.append(desc.digest)
            self._progress(f"{short_id(desc.digest)}: Mounted from {mount_from}")
            return
        location = urllib.parse.urljoin(base + "/", headers.get("Location", ""))
        sep = "&" if "?" in location else "?"
        path = self.store.layout.blob_path(desc.digest)
        await self._request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(desc.digest)}",
            ref,
            scope="pull,push",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)},
            data=lambda: open(path, "rb"),  # reopened on a retry after the token flow
            allow=(201,),
        )
        result.transferred.append(desc.digest)
        self._progress(f"{short_id(desc.digest)}: Pushed")


def _token_key(url: str, ref: Reference) -> tuple[str, str]:
    """Tokens are per host (a mirror is not its upstream) and repository."""
    return urllib.parse.urlsplit(url).netloc, ref.repository


def _pick_platform(manifests: list[Descriptor], ref: Reference) -> Descriptor:
    for desc in manifests:
        if desc.platform.get("os", "linux") == "linux" and desc.platform.get("architecture") == _ARCH:
            return desc
    raise RegistryError(f"image {ref} has no manifest for linux/{_ARCH}")


def _error_text(payload: bytes) -> str:
    text = payload.decode(errors="replace").strip()
    return text[:300] if text else "(empty body)"
