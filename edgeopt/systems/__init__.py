"""Systems over time: ``edgeopt/systems/<id>.py`` holds problem ``<id>``'s ``Simulation`` (``edgeopt simulate``).

A Simulation turns its state into the problem's Instance each interval and carries out a decision; the loop
that runs it with any registered method as the policy is ``edgeopt.simulation``. The registry finds a problem's
system by its module name here, so a new system is one new file.
"""
