"""Hypothesis strategies for fed's codec documents: tagged msgpack trees, valid values, mutations."""

from __future__ import annotations

from hypothesis import strategies as st

from fed._serialization import tags

SECRET = "SECRET-7c1d"
M = tags.EXTS
DTYPES = ["<f8", "|u1", "|b1", "<U2", "|S3", "<M8[D]", "<m8[ms]", ">i4", "<c16", "|O", "|V4", "<f8 ", SECRET, "", "<U0"]

leaves = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=12)
          | st.binary(max_size=24) | st.just(SECRET) | st.sampled_from(DTYPES))
markers = st.sampled_from(sorted(tags.NAMES)).map(lambda t: M[t])


def tagged(children):
    """A marker followed by random children, or by children shaped like that tag's parts."""
    shaped = st.one_of(
        st.tuples(st.just(M[tags.NDARRAY]), st.sampled_from(DTYPES), st.lists(st.integers(-1, 5), max_size=4),
                  st.booleans(), st.binary(max_size=40) | st.integers(-1, 3)).map(list),
        st.tuples(st.just(M[tags.NUMPY_SCALAR]), st.sampled_from(DTYPES), st.binary(max_size=16)).map(list),
        st.tuples(st.just(M[tags.DATETIME]), *[st.integers(-1, 3000)] * 8, st.none() | children).map(list),
        st.tuples(st.just(M[tags.DEQUE]), st.none() | st.integers(-2, 2**63), children).map(list),
        st.tuples(st.just(M[tags.PICKLED]), st.binary(max_size=60), st.lists(children, max_size=2)).map(list),
        st.tuples(st.just(M[tags.BIG_INT]), st.binary(max_size=20)).map(list),
        st.tuples(st.just(M[tags.DECIMAL]), st.text(max_size=20)).map(list),
        st.tuples(st.just(M[tags.STR]) | st.just(M[tags.BYTES]), st.integers(-1, 3)).map(list),
    )
    return shaped | st.tuples(markers, st.lists(children, max_size=5)).map(lambda t: [t[0], *t[1]])


trees = st.recursive(leaves, lambda children: st.lists(children, max_size=5)
                     | st.dictionaries(st.text(max_size=5), children, max_size=4) | tagged(children)
                     | st.lists(markers | children, max_size=4), max_leaves=25)


values = st.recursive(
    st.none() | st.integers() | st.floats() | st.text(max_size=10) | st.binary(max_size=10) | st.booleans(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3), max_leaves=12)


def mutate(tree, draw):
    """Replace, drop or duplicate one node of a decoded-for-mutation msgpack tree."""
    if isinstance(tree, list) and tree and draw(st.booleans()):
        i = draw(st.integers(0, len(tree) - 1))
        kind = draw(st.sampled_from(["replace", "drop", "dup", "recurse"]))
        tree = list(tree)
        if kind == "replace":
            tree[i] = draw(trees)
        elif kind == "drop":
            del tree[i]
        elif kind == "dup":
            tree.insert(i, tree[i])
        else:
            tree[i] = mutate(tree[i], draw)
        return tree
    if isinstance(tree, dict) and tree and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(tree, key=repr)))
        return {**tree, key: mutate(tree[key], draw)}
    return draw(trees) if draw(st.integers(0, 3)) == 0 else tree
