"""`kubelite build` and `kubelite image ls|inspect|rm|pull|push|import|tag|prune`.

Images live in `<root>/images` (`--root`, default $KUBELITE_ROOT or
/var/lib/kubelite): the same store the kubelet on this machine runs from.
Output follows docker's: `Step N/M`, `Using cache`, an aligned table for `ls`.

`kubelite build` against a `kubelite up` cluster (the kubeconfig in use records its
registry, see cli/local/registry.py) also pushes each tag to the cluster registry, where
every node's kubelet finds it through its docker.io mirror: build, then `kubelite run`,
as with Docker. `--push REGISTRY` does the same for any registry (a multi-VM cluster's,
docs/registry.md); `--no-push` keeps the image local.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from runtime.build.builder import Builder
from runtime.images.busybox import import_busybox
from runtime.images.digest import short_id
from runtime.images.errors import ImageError
from runtime.images.importer import import_rootfs
from runtime.images.mirrors import Mirrors, parse_endpoint
from runtime.images.reference import DOCKER_HUB, parse_reference
from runtime.images.registry import RegistryClient, is_plain_http
from runtime.images.store import ImageStore

DEFAULT_ROOT = "/var/lib/kubelite"


def _root_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("KUBELITE_ROOT", DEFAULT_ROOT)),
        help=f"kubelite state directory; images are under ROOT/images (default $KUBELITE_ROOT or {DEFAULT_ROOT})",
    )


def register(subparsers: Any) -> None:
    b = subparsers.add_parser("build", help="build an image from a Dockerfile")
    b.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="name the image")
    b.add_argument("-f", "--file", type=Path, help="the Dockerfile (default DIR/Dockerfile)")
    b.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="set a build ARG")
    b.add_argument("--target", metavar="STAGE", help="build up to this stage (FROM ... AS STAGE) and make it the image")
    b.add_argument("dir", type=Path, metavar="DIR", help="the build context")
    b.add_argument("--push", metavar="REGISTRY", help="also push to this registry (HOST:PORT, plain http only for "
                   "loopback; http://HOST:PORT for plain http elsewhere), where nodes pull through a docker.io "
                   "mirror (default: the cluster registry of a `kubelite up` cluster in the kubeconfig)")
    b.add_argument("--no-push", action="store_true", help="keep the image local, even for a `kubelite up` cluster")
    b.add_argument("--kubeconfig", metavar="FILE", help="the cluster whose registry to push to (default: "
                   "$KUBECONFIG, ~/.kube/config, /var/lib/kubelite/admin.kubeconfig)")
    _root_flag(b)
    b.set_defaults(func=_guard(cmd_build))

    img = subparsers.add_parser("image", help="manage images: ls, inspect, rm, pull, push, import, tag, prune")
    verbs = img.add_subparsers(dest="image_command", metavar="VERB")
    img.set_defaults(func=lambda _args: (img.print_help(), 2)[1])

    ls = verbs.add_parser("ls", aliases=["list"], help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    _root_flag(ls)
    ls.set_defaults(func=_guard(cmd_ls))

    ins = verbs.add_parser("inspect", help="show an image's manifest and config as JSON")
    ins.add_argument("images", nargs="+", metavar="IMAGE")
    _root_flag(ins)
    ins.set_defaults(func=_guard(cmd_inspect))

    rm = verbs.add_parser("rm", aliases=["rmi"], help="untag images and delete what nothing uses")
    rm.add_argument("images", nargs="+", metavar="IMAGE")
    _root_flag(rm)
    rm.set_defaults(func=_guard(cmd_rm))

    pull = verbs.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    pull.add_argument("--insecure", action="store_true", help="use plain http (always used for localhost)")
    _root_flag(pull)
    pull.set_defaults(func=_guard(cmd_pull))

    push = verbs.add_parser("push", help="push an image to a registry")
    push.add_argument("image", metavar="NAME[:TAG]")
    push.add_argument("target", nargs="?", metavar="REGISTRY/NAME[:TAG]", help="push under another name")
    push.add_argument("--insecure", action="store_true", help="use plain http (always used for localhost)")
    push.add_argument("--mount-from", metavar="REPOSITORY", help="mount blobs from this repository")
    _root_flag(push)
    push.set_defaults(func=_guard(cmd_push))

    imp = verbs.add_parser("import", help="import a rootfs directory or tarball, or busybox-static")
    imp.add_argument("source", nargs="?", type=Path, metavar="DIR|TARBALL")
    imp.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]")
    imp.add_argument("--busybox", action="store_true", help="make busybox:latest from /bin/busybox")
    _root_flag(imp)
    imp.set_defaults(func=_guard(cmd_import))

    tag = verbs.add_parser("tag", help="give an image another name")
    tag.add_argument("source", metavar="SOURCE")
    tag.add_argument("target", metavar="TARGET")
    _root_flag(tag)
    tag.set_defaults(func=_guard(cmd_tag))

    prune = verbs.add_parser("prune", help="delete blobs and unpacked layers no image uses")
    _root_flag(prune)
    prune.set_defaults(func=_guard(cmd_prune))


def _guard(func: Any) -> Any:
    """Turn image errors into one line on stderr and exit code 1."""

    async def run(args: argparse.Namespace) -> int:
        try:
            return int(await func(args))
        except ImageError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    return run


def _store(args: argparse.Namespace) -> ImageStore:
    return ImageStore(args.root / "images")


def _human_size(size: int) -> str:
    """Decimal units, as docker prints them."""
    if size < 1000:
        return f"{size}B"
    value = float(size)
    units = ["kB", "MB", "GB", "TB"]
    while True:
        value /= 1000
        if value < 1000 or len(units) == 1:
            return f"{value:.3g}{units[0]}"
        units.pop(0)


def _ago(created: str) -> str:
    if not created:
        return "N/A"
    try:
        when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    secs = int((datetime.datetime.now(datetime.UTC) - when).total_seconds())
    for unit, size in (("year", 31536000), ("month", 2592000), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            count = secs // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 0 else "just now"


async def cmd_build(args: argparse.Namespace) -> int:
    build_args = {}
    for item in args.build_arg:
        key, eq, value = item.partition("=")
        build_args[key] = value if eq else os.environ.get(key, "")
    for tag in args.tag:
        parse_reference(tag)  # refuse a bad name before building
    try:
        target = None if args.no_push else push_registry(args.push, args.kubeconfig)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    mirrors = Mirrors({DOCKER_HUB: (target.url,)}) if target else None  # FROM busybox comes from there too
    store = _store(args)
    await Builder(store, mirrors=mirrors).build(args.dir, dockerfile=args.file, tags=args.tag,
                                                build_args=build_args, target=args.target)
    if target is not None:
        await push_to_cluster(store, args.tag, target)
    return 0


@dataclass(frozen=True)
class PushTarget:
    """A registry that nodes reach as their docker.io mirror."""

    address: str  # HOST:PORT
    url: str  # scheme://HOST:PORT
    source: str  # where the setting came from, for the message
    aliases: tuple[str, ...] = ()  # other names of the same registry (localhost:PORT for up's)

    @property
    def insecure(self) -> bool:
        return self.url.startswith("http://")


def push_registry(flag: str | None, kubeconfig: str | None) -> PushTarget | None:
    """The registry `kubelite build` pushes to: --push, else the cluster registry that
    `kubelite up` recorded in the kubeconfig in use, else none."""
    from cli.config import ConfigError, kubeconfig_path
    from cli.local import registry

    if flag:
        url = flag if "://" in flag else f"{'http' if is_plain_http(flag) else 'https'}://{flag}"
        try:
            url = parse_endpoint(url)
        except ImageError as err:
            raise ValueError(f"--push: {err}") from err
        return PushTarget(url.split("://", 1)[1], url, "registry")
    try:
        path = kubeconfig_path(kubeconfig, os.environ)
    except ConfigError as err:
        raise ValueError(str(err)) from err
    address = registry.from_kubeconfig(path) if path else None
    if not address:
        return None
    return PushTarget(address, f"http://{address}", "the cluster registry", aliases=tuple(registry.names(address)))


def remote_name(tag: str, address: str, *, aliases: tuple[str, ...] = ()) -> str | None:
    """Where a local tag goes on a docker.io mirror at `address`: `my-app` -> `ADDR/library/my-app:latest`.
    A name that spells out the registry (`address` or one of its `aliases`, e.g. localhost:5000)
    goes there as it is; None for a name that belongs to another registry (`ghcr.io/x/y`)."""
    ref = parse_reference(tag)
    if ref.domain in (None, DOCKER_HUB):
        return f"{address}/{ref.repository}:{ref.tag_or_latest}"
    if ref.domain == address or ref.domain in aliases:
        return f"{address}/{ref.path}:{ref.tag_or_latest}"
    return None


async def push_to_cluster(store: ImageStore, tags: list[str], target: PushTarget) -> None:
    if not tags:
        print(f"note: the image has no name (-t NAME), so it was not pushed to {target.source}", file=sys.stderr)
        return
    async with RegistryClient(store, insecure=target.insecure) as client:
        for tag in tags:
            remote = remote_name(tag, target.address, aliases=target.aliases)
            if remote is None:
                print(f"note: {tag} names another registry; not pushed to {target.source} "
                      f"(`kubelite image push {tag}` sends it to its own)", file=sys.stderr)
                continue
            try:
                result = await client.push(tag, remote)
            except ImageError as err:
                raise ImageError(f"{err} (the image is built and tagged here; `--no-push` skips the push)") from err
            sent = len(result.transferred)
            print(f"Pushed {tag} to {target.source} {target.address} as {remote.split('/', 1)[1]} "
                  f"({sent} blob{'s' if sent != 1 else ''} sent); every node pulls it as {tag}")


async def cmd_ls(args: argparse.Namespace) -> int:
    images = _store(args).list_images()
    if args.quiet:
        for ident in dict.fromkeys(short_id(i.config_digest) for i in images):
            print(ident)
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for col in ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"):
        table.add_column(col, no_wrap=True)
    for image in images:
        name, _, tag = image.key.rpartition(":")
        if "@" in image.key:
            name, _, _ = image.key.partition("@")
            tag = "<none>"
        table.add_row(name, tag, short_id(image.config_digest), _ago(image.created), _human_size(image.size))
    Console(width=200).print(table)
    return 0


async def cmd_inspect(args: argparse.Namespace) -> int:
    store = _store(args)
    out = []
    tags = store.layout.tags()
    for ref in args.images:
        digest = store.resolve(ref)
        manifest = store.manifest(digest)
        config = json.loads(store.layout.read_blob(manifest.config.digest))
        out.append(
            {
                "Id": manifest.config.digest,
                "ManifestDigest": digest,
                "RepoTags": sorted(k for k, d in tags.items() if d.digest == digest),
                "Created": config.get("created", ""),
                "Size": manifest.config.size + sum(layer.size for layer in manifest.layers),
                "Architecture": config.get("architecture"),
                "Os": config.get("os"),
                "Config": config.get("config", {}),
                "RootFS": {
                    "Type": "layers",
                    "Layers": [d.digest for d in manifest.layers],
                    "DiffIDs": config.get("rootfs", {}).get("diff_ids", []),
                },
                "History": config.get("history", []),
            }
        )
    print(json.dumps(out, indent=4))
    return 0


async def cmd_rm(args: argparse.Namespace) -> int:
    store = _store(args)
    failed = 0
    for ref in args.images:
        try:
            for key in store.untag(ref):
                print(f"Untagged: {key}")
        except ImageError as err:
            print(f"error: {err}", file=sys.stderr)
            failed = 1
    result = store.gc()
    if result.blobs_removed or result.layers_removed:
        print(f"Deleted: {result.blobs_removed} blobs, {result.layers_removed} layers, "
              f"{_human_size(result.bytes_freed)} freed")  # fmt: skip
    return failed


async def cmd_pull(args: argparse.Namespace) -> int:
    ref = parse_reference(args.image)
    print(f"{ref.tag_or_latest if not ref.digest else ref.digest}: Pulling from {ref.repository}")
    async with RegistryClient(_store(args), insecure=args.insecure, progress=print) as client:
        await client.pull(ref)
    print(f"Status: Downloaded image for {ref}")
    return 0


async def cmd_push(args: argparse.Namespace) -> int:
    target = args.target or args.image
    ref = parse_reference(target)
    print(f"The push refers to repository [{ref.registry}/{ref.repository}]")
    async with RegistryClient(_store(args), insecure=args.insecure, progress=print) as client:
        await client.push(args.image, target, mount_from=args.mount_from)
    return 0


async def cmd_import(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.busybox:
        digest = import_busybox(store, tag=(args.tag or ["busybox:latest"])[0])
        for extra in args.tag[1:]:
            store.tag(digest, extra)
    elif args.source is None:
        print("error: give a rootfs directory or tarball to import, or --busybox", file=sys.stderr)
        return 2
    else:
        digest = import_rootfs(store, args.source, tags=list(args.tag))
    print(store.manifest(digest).config.digest)
    return 0


async def cmd_tag(args: argparse.Namespace) -> int:
    _store(args).tag(args.source, args.target)
    return 0


async def cmd_prune(args: argparse.Namespace) -> int:
    result = _store(args).gc()
    print(f"Deleted {result.blobs_removed} blobs and {result.layers_removed} unpacked layers; "
          f"total reclaimed space: {_human_size(result.bytes_freed)}")  # fmt: skip
    return 0
