"""Trained policies shipped with edgeopt: ``<problem>/<algorithm>-<preset>.npz`` (see ``edgeopt.learn.policy``)."""
