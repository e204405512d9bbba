"""DOT task graphs with communication costs (as Sinnen's task-graph generator writes them) -> ``dagsched``
instances (``edgeopt import dot``).

Read by a small tokenizer of DOT's node and edge statements rather than pydot: pydot keeps no line numbers
for the error messages, prints parse errors to stdout, reads ``1e5`` as ``1`` and an attribute ``e5``, and
parses a 2,000-task graph 69 times slower than this whole import (``benchmarks/importers.py``).
"""
from __future__ import annotations

from pathlib import Path

from edgeopt.importers.taskgraph import graph_instance, parse_weight, read_text
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance
from edgeopt.registry import importer


_DOT_TOKEN = r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>//[^\n]*|/\*.*?\*/|^\#[^\n]*)
  | (?P<arrow>->|--) | (?P<punct>[{}\[\];,=])
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<id>[A-Za-z_\x80-\uffff][\w\x80-\uffff]*|-?(?:\.\d+|\d+(?:\.\d*)?)(?:[eE][-+]?\d+)?)
  | (?P<bad>.)"""  # DOT's tokens; numerals also in exponent form (1e5)


def _dot_tokens(text: str, p: Path) -> list[tuple[str, str, int]]:
    """(kind, value, line) of every token; kinds ``id`` (quoted ids unquoted), ``->``, ``--`` and punctuation."""
    import re

    out, line = [], 1
    for m in re.finditer(_DOT_TOKEN, text, re.VERBOSE | re.DOTALL | re.MULTILINE):
        kind, value = m.lastgroup, m.group()
        if kind == "bad":
            raise InputError(f"{p}: line {line}", f"has {value!r}, which is not DOT (the subset: node and edge "
                                                  "statements with [key=value] attributes)")
        if kind in ("arrow", "punct"):
            out.append((value, value, line))
        elif kind == "quoted":
            out.append(("id", re.sub(r'\\(["\\])', r"\1", value[1:-1]).replace("\\\n", ""), line))
        elif kind == "id":
            out.append(("id", value, line))
        line += value.count("\n")
    return out


@importer("dot", "dagsched")
def import_dot(path: str, processors: int = 4) -> Instance:
    """DOT task graph with node and edge ``Weight`` attributes -> one job on identical processors.

    The subset Sinnen's generator writes: ``digraph "name" { a [Weight=2]; a -> b [Weight=5]; }``,
    with edge chains, ``node [...]`` / ``edge [...]`` defaults, ``key=value`` graph attributes and
    comments; other attributes are ignored. Subgraphs and undirected graphs are refused with the line.
    """
    from itertools import pairwise

    p, text = read_text(path, "a DOT file")
    toks = _dot_tokens(text, p)
    pos = 0

    def peek(k: int = 0) -> tuple[str, str, int]:
        return toks[pos + k] if pos + k < len(toks) else ("end", "", toks[-1][2] if toks else 1)

    def take(kind: str, what: str) -> str:
        nonlocal pos
        got = peek()
        if got[0] != kind:
            raise InputError(f"{p}: line {got[2]}", f"must have {what} here, got {got[1] or 'the end of the file'!r}")
        pos += 1
        return got[1]

    def attrs() -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        while peek()[0] == "[":
            take("[", "'['")
            while peek()[0] != "]":
                line = peek()[2]
                key = take("id", "an attribute name")
                take("=", f"'=' after attribute {key!r}")
                out[key] = (take("id", f"a value of attribute {key!r}"), line)
                if peek()[0] in (",", ";"):
                    take(peek()[0], "a separator")
            take("]", "']'")
        return out

    if peek()[0] == "id" and peek()[1].lower() == "strict":
        pos += 1
    head = peek()
    if head[0] != "id" or head[1].lower() not in ("digraph", "graph"):
        raise InputError(f"{p}: line {head[2]}", "must start with `digraph NAME {` (a DOT task graph)")
    if head[1].lower() == "graph":
        raise InputError(f"{p}: line {head[2]}", "must be a digraph (task graph edges are directed)")
    pos += 1
    graph = take("id", "the graph's name") if peek()[0] == "id" else ""
    take("{", "'{'")
    defaults: dict[str, dict] = {"node": {}, "edge": {}}
    node_attrs: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    edge_attrs: dict[tuple[str, str], tuple[dict, int]] = {}
    while peek()[0] not in ("}", "end"):
        kind, value, line = peek()
        if kind == ";":
            pos += 1
            continue
        if kind != "id":
            raise InputError(f"{p}: line {line}", f"must have a node or edge statement here, got {value!r} "
                                                  "(subgraphs are not supported)")
        if value.lower() in ("node", "edge", "graph") and peek(1)[0] == "[":
            pos += 1
            given = attrs()
            if value.lower() != "graph":
                defaults[value.lower()].update(given)
            continue
        if value.lower() == "subgraph":
            raise InputError(f"{p}: line {line}", "has a subgraph, which task-graph files do not use")
        pos += 1
        if peek()[0] == "=":  # a graph attribute
            pos += 1
            take("id", f"a value of graph attribute {value!r}")
            continue
        ends = [value]
        while peek()[0] in ("->", "--"):
            if peek()[0] == "--":
                raise InputError(f"{p}: line {peek()[2]}", "has an undirected edge `--`: a digraph needs `->`")
            pos += 1
            ends.append(take("id", "a node after '->'"))
        given = attrs()
        for v in ends:
            node_attrs.setdefault(v, dict(defaults["node"]))
            first_line.setdefault(v, line)
        if len(ends) == 1:
            node_attrs[value].update(given)
        for a, b in pairwise(ends):
            where = f"{p}: line {line}: edge {a!r} -> {b!r}"
            if a == b:
                raise InputError(where, "must join two different nodes")
            if (a, b) in edge_attrs:
                raise InputError(where, f"repeats the edge of line {edge_attrs[(a, b)][1]}")
            edge_attrs[(a, b)] = ({**defaults["edge"], **given}, line)
    take("}", "'}'")
    if peek()[0] != "end":
        raise InputError(f"{p}: line {peek()[2]}", "must end after the graph's closing '}' (one graph per file)")

    def weight(given: dict, what: str, line: int) -> float:
        if "Weight" not in given:
            raise InputError(f"{p}: line {line}: {what}", "must have a Weight attribute ([Weight=...])")
        text, at = given["Weight"]
        return parse_weight(text, f"{p}: line {at}: {what} Weight")

    nodes = {v: weight(a, f"node {v!r}", first_line[v]) for v, a in node_attrs.items()}
    edges = {e: weight(a, f"edge {e[0]!r} -> {e[1]!r}", line) for e, (a, line) in edge_attrs.items()}
    return graph_instance(p, graph, nodes, edges, processors, "dot")
