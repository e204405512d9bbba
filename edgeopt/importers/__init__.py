"""Outside benchmark formats -> instance files (``edgeopt import FORMAT FILE``), one module per format.

Each format registers its reader with ``@registry.importer(name, problem)``; the registry imports every module
of this package to find them, so a new format is one new file here. The task-graph formats (STG, GXL, DOT)
share one builder, ``taskgraph``.
"""
