"""GXL task graphs with communication costs (as Sinnen's task-graph generator writes them) -> ``dagsched``
instances (``edgeopt import gxl``), read with the standard library's XML parser."""
from __future__ import annotations

from edgeopt.importers.taskgraph import graph_instance, parse_weight, read_text
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance
from edgeopt.registry import importer


@importer("gxl", "dagsched")
def import_gxl(path: str, processors: int = 4) -> Instance:
    """GXL task graph with node and edge ``Weight`` attributes -> one job on identical processors.

    Reads the first ``<graph>`` of the ``<gxl>`` document: every ``<node id=...>`` with
    ``<attr name="Weight"><int>w</int></attr>`` (``<float>`` too) as its computation time, every
    ``<edge from=... to=...>`` with its Weight as its communication time; other attributes (CCR, start
    times, processors of a given schedule) are ignored. Parsed with the standard library's XML parser.
    """
    import xml.etree.ElementTree as ET

    p, text = read_text(path, "a GXL file")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        raise InputError(f"{p}: line {line}", f"is not well-formed XML ({str(exc).split(':')[0]}, column {col})") from None

    def tag(el) -> str:
        return el.tag.rsplit("}", 1)[-1]

    if tag(root) != "gxl":
        raise InputError(str(p), f"must be a GXL document (root element <gxl>), got <{tag(root)}>")
    graph = next((el for el in root if tag(el) == "graph"), None)
    if graph is None:
        raise InputError(str(p), "must hold a <graph> element")
    if graph.get("edgemode", "directed") not in ("directed", "defaultdirected"):
        raise InputError(f"{p}: graph", f"must be directed (edgemode=\"directed\"), got {graph.get('edgemode')!r}")

    def weight(el, where: str) -> float:
        attr = next((a for a in el if tag(a) == "attr" and a.get("name") == "Weight"), None)
        if attr is None or len(attr) != 1 or tag(attr[0]) not in ("int", "float", "double"):
            raise InputError(where, 'must have a Weight attribute: <attr name="Weight"><int>...</int></attr>')
        return parse_weight(attr[0].text, f"{where} Weight")

    nodes: dict[str, float] = {}
    edges: dict[tuple[str, str], float] = {}
    for k, el in enumerate(e for e in graph if tag(e) == "node"):
        v = el.get("id")
        if v is None:
            raise InputError(f"{p}: node #{k + 1}", "must have an id attribute")
        if v in nodes:
            raise InputError(f"{p}: node {v!r}", "repeats a node id")
        nodes[v] = weight(el, f"{p}: node {v!r}")
    for k, el in enumerate(e for e in graph if tag(e) == "edge"):
        a, b = el.get("from"), el.get("to")
        where = f"{p}: edge {a!r} -> {b!r}" if a is not None and b is not None else f"{p}: edge #{k + 1}"
        if a is None or b is None:
            raise InputError(where, "must have from and to attributes")
        for end in (a, b):
            if end not in nodes:
                raise InputError(where, f"names node {end!r}, which is not a <node> of the graph")
        if a == b:
            raise InputError(where, "must join two different nodes")
        if (a, b) in edges:
            raise InputError(where, "repeats an edge")
        edges[(a, b)] = weight(el, where)
    return graph_instance(p, graph.get("id", ""), nodes, edges, processors, "gxl")
