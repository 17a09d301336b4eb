"""What the user named on the command line: `pods`, `pods web api`, `pod/web deploy/api`,
`pods,deploy`, `all`, resolved to resources (api/resources.py) and names, in the order given."""

from __future__ import annotations

from dataclasses import dataclass, field

from api import resources
from api.resources import Resource

# kubectl's `all` category, restricted to the kinds kubelite serves.
ALL = (resources.PODS, resources.DEPLOYMENTS, resources.REPLICASETS)


@dataclass(slots=True)
class Target:
    resource: Resource
    names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Targets:
    items: list[Target]
    # Names print as `pod/web` when several types are shown or the user typed TYPE/NAME.
    prefixed: bool


def parse(words: list[str]) -> Targets:
    """`["pod/web", "deploy/api"]`, `["pods", "web", "api"]`, `["pods,deploy"]`, `["all"]`.

    Raises KeyError (unknown type, with kubectl's message) or ValueError (mixed forms)."""
    if not words:
        raise ValueError("you must specify the type of resource to get. Use \"kubelite get all\", or a type "
                         "such as pods, deployments, replicasets, nodes, namespaces, events")
    if "/" in words[0]:
        out: list[Target] = []
        for word in words:
            kind, sep, name = word.partition("/")
            if not sep or not name:
                raise ValueError(f"there is no need to specify a resource type as a separate argument when "
                                 f"passing arguments in resource/name form (e.g. 'kubelite get resource/"
                                 f"<resource_name>' instead of 'kubelite get resource resource/"
                                 f"<resource_name>'): {word}")
            res = resources.lookup(kind)
            same = next((t for t in out if t.resource is res), None)
            if same is None:
                out.append(Target(res, [name]))
            else:
                same.names.append(name)
        return Targets(out, prefixed=True)
    types: list[Resource] = []
    for word in words[0].split(","):
        if not word:
            continue
        for res in ALL if word == "all" else (resources.lookup(word),):
            if res not in types:
                types.append(res)
    names = words[1:]
    if names and len(types) > 1:
        raise ValueError("names can only be given with a single resource type, or as TYPE/NAME")
    return Targets([Target(t, list(names)) for t in types], prefixed=len(types) > 1 or "all" in words[0].split(","))
