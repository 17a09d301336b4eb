"""Splicing resourceVersion into stored bytes equals decoding and re-encoding."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.registry import encode
from apiserver.watchcache import CachedObject, splice_resource_version, with_resource_version

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
labels = st.dictionaries(text, text, max_size=3)


@settings(max_examples=150, deadline=None)
@given(name=text, labels=labels, annotations=labels, spec=st.dictionaries(text, st.integers() | text, max_size=3),
       revision=st.integers(min_value=1, max_value=2**62), empty_meta=st.booleans())
def test_splice_equals_decode(name, labels, annotations, spec, revision, empty_meta):
    meta = {} if empty_meta else {"name": name, "labels": labels, "annotations": annotations,
                                  "resourceVersion": "stale"}
    stored = encode({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"metadata": spec}})
    spliced = splice_resource_version(stored, revision)
    assert spliced is not None
    assert json.loads(spliced) == with_resource_version(stored, revision)
    cached = CachedObject.decode("k", stored, revision)
    assert json.loads(cached.raw) == cached.obj


def test_unexpected_layouts_fall_back_to_decoding():
    stored = json.dumps({"kind": "Pod", "spec": {"metadata": {}}, "metadata": {"name": "a"}}).encode()
    assert splice_resource_version(stored, 5) is None
    cached = CachedObject.decode("k", stored, 5)
    assert json.loads(cached.raw)["metadata"] == {"name": "a", "resourceVersion": "5"}
