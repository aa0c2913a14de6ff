"""Pod templates compared as the API server's `apiequality.Semantic` compares the decoded Go values,
for every kind: what a controller reads back as the same template whatever the JSON that carries it
(a null, an absent and an empty list or map; `creationTimestamp: null`, which Kubernetes 1.34 stopped
writing into the templates it serializes). Pure."""

from typing import Any

# Go maps (nil and empty are equal) and structs held by value, by field name.
_EMPTY_IS_NOTHING = frozenset({"labels", "annotations", "nodeSelector", "limits", "requests", "metadata", "resources"})
_POINTERS = frozenset({("spec", "resources")})  # a template's paths whose field names say otherwise


def semantic(value: Any, path: tuple[str, ...] = ()) -> Any:
    """Like apiequality.Semantic on the decoded Go value: null, absent and empty lists or maps are
    the same, and so are an empty and an absent struct held by value; an empty struct behind a
    pointer (`securityContext: {}`, the pod's `resources: {}`) or a map that selects something (a
    volume's `emptyDir: {}`) is not nothing."""
    if isinstance(value, dict):
        out = {}
        for k, item in value.items():
            v = semantic(item, (*path, k))
            if v is None or v == [] or (v == {} and _empty_is_nothing((*path, k))):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [semantic(v, path) for v in value]
    return value


def _empty_is_nothing(path: tuple[str, ...]) -> bool:
    return path[-1] in _EMPTY_IS_NOTHING and path not in _POINTERS
