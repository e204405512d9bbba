"""Exact models: ``build_model(instance)`` and ``read_solution(model, instance)``, one module per problem."""
