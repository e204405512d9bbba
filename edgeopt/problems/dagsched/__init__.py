"""``dagsched`` — DAG sub-task offloading to modality-specific edge LLMs and a cloud LLM.

Jobs are DAGs of sub-tasks (decompose -> modular sub-tasks -> aggregate); every sub-task goes to an
edge server whose LLM supports its modality (one queue per edge) or to the unqueued multimodal cloud.
Minimize ``sum_i gamma*T_i + (1-gamma)*Cost_i`` subject to modality, precedence/queue order and
``T_i <= T_max``. See ``specs/dagsched.md``; figures of the presets are sourced in
``instances/dagsched/README.md``.

Servers are numbered ``0..N-1`` (edge servers, in ``data.servers`` order) and ``N`` (the cloud, if any);
sub-tasks are named ``[job, sub-task]`` by their indices.

The problem is a package: ``data`` (the instance and solution types, ``Graph``), ``referee`` (``evaluate``)
and ``generator`` (presets, ``generate``); the names below are its public face. The STG, GXL and DOT readers
are in ``edgeopt.importers``, the system over time in ``edgeopt.systems.dagsched``.
"""
from edgeopt.problems.dagsched.data import (GIGA, MAX_BPS, MAX_INDEX, MIN_BPS, Cloud, Data, Edge, Fixed, Graph, Index,
                                            Instance, Job, Jobs, Radio, Rates, Server, Solution, SubTask, Task,
                                            topological)
from edgeopt.problems.dagsched.generator import (FAMILIES, HEFT_EDGES, HEFT_EXEC, LABELS, PRESETS, generate,
                                                 instance_bytes, small_instance)
from edgeopt.problems.dagsched.referee import SENSE, evaluate, placement

__all__ = ["FAMILIES", "GIGA", "HEFT_EDGES", "HEFT_EXEC", "LABELS", "MAX_BPS", "MAX_INDEX", "MIN_BPS", "PRESETS",
           "SENSE", "Cloud", "Data", "Edge", "Fixed", "Graph", "Index", "Instance", "Job", "Jobs", "Radio", "Rates", "Server",
           "Solution", "SubTask", "Task", "evaluate", "generate", "instance_bytes", "placement", "small_instance",
           "topological"]
